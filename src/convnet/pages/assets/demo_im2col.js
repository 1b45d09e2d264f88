// im2col: the notes' arithmetic for AlexNet's first layer, then the small case drawn in full:
// the padded input, the window matrix (one row per window), the weight matrix (one column per
// filter) and their product.  Every number is DATA's (convnet's im2col and conv2d_forward).
(function () {
  const g = DATA.geometry, n = DATA.notes, xp = DATA.x_padded;
  const [kh, kw] = g.kernel, [sh, sw] = g.stride, [dh, dw] = g.dilation, [Ho, Wo] = g.out;
  const C = xp[0][0].length, K = DATA.b.length;

  app.append(el("div", {class: "panel arith", id: "notes-arithmetic"},
    el("h2", {text: "The notes' example: AlexNet's first layer"}),
    el("div", {text: `Input ${n.size}×${n.size}×${n.depth}, ${n.filters} filters of ${n.kernel}×${n.kernel}×${n.depth}, stride ${n.stride}, no padding.`}),
    el("div", {text: `Positions per side: (${n.size} − ${n.kernel}) / ${n.stride} + 1 = ${n.out}; windows: ${n.out}·${n.out} = ${n.windows}.`}),
    el("div", {text: `Each window stretched: ${n.kernel}·${n.kernel}·${n.depth} = ${n.column} numbers. The notes' X_col is ${n.column} × ${n.windows} (one column per window); ` +
                     `W_row is ${n.filters} × ${n.column}; np.dot(W_row, X_col) is ${n.filters} × ${n.windows}, reshaped to ${n.out}×${n.out}×${n.filters}.`}),
    el("div", {class: "note", text: `convnet stores the transpose: one row per window (${n.windows} × ${n.column}) times the weights as a ${n.column} × ${n.filters} matrix, ` +
                                    `so the product (${n.windows} × ${n.filters}) is already the NHWC output. Windows overlap, so the columns repeat input values: ` +
                                    `${n.windows}·${n.column} numbers from ${n.size * n.size * n.depth}.`})));

  app.append(el("h2", {text: `The same, small: ${DATA.x_padded.length}×${DATA.x_padded[0].length}×${C} padded input, ${K} filters of ${kh}×${kw}×${C}, stride ${sh}: ` +
                             `${Ho * Wo} windows × ${kh * kw * C} numbers`}));
  const p = player(Ho * Wo, r => select(r));
  app.append(p.bar);
  const row = el("div", {class: "row"});
  const inPanel = el("div", {class: "panel"}, el("h3", {text: "Padded input"}));
  const inputs = [];
  for (let c = 0; c < C; c++) {
    const t = grid(channel(xp, c), {pad: g.pads});
    inPanel.append(el("h3", {text: `x[:, :, ${c}]`}), t.table);
    inputs.push(t.cells);
  }
  row.append(inPanel);
  const labels = DATA.column_labels.map(([a, b, c]) => `${a}${b}${c}`);
  const colsTable = grid(DATA.cols, {onclick: i => { p.pause(); select(i); }});
  colsTable.table.id = "cols";
  const head = el("tr", {}, ...labels.map(t => el("th", {text: t})));
  colsTable.table.prepend(head);
  row.append(el("div", {class: "panel"}, el("h3", {text: `Windows as rows: ${Ho * Wo} × ${kh * kw * C} (column header: kernel row, column, channel)`}),
                el("div", {class: "scroll"}, colsTable.table)));
  const wTable = grid(DATA.wmat);
  const prod = grid(DATA.product, {onclick: i => { p.pause(); select(i); }});
  prod.table.id = "product";
  row.append(el("div", {class: "panel"}, el("h3", {text: `Weights: ${kh * kw * C} × ${K}`}), el("div", {class: "scroll"}, wTable.table)));
  row.append(el("div", {class: "panel"}, el("h3", {text: `Rows × weights + b = ${Ho * Wo} × ${K}`}), prod.table,
                el("div", {class: "note", id: "product-note"})));
  app.append(row);

  // Window r: its cells in the input, its row of the column matrix, its row of the product.
  function select(r) {
    ["win", "out"].forEach(unmark);
    const i = Math.floor(r / Wo), j = r % Wo;
    for (let a = 0; a < kh; a++) for (let b = 0; b < kw; b++) for (let c = 0; c < C; c++)
      inputs[c][i * sh + a * dh][j * sw + b * dw].classList.add("win");
    colsTable.cells[r].forEach(td => td.classList.add("win"));
    prod.cells[r].forEach(td => td.classList.add("out"));
    document.getElementById("product-note").textContent =
      `Row ${r} is output position (${i}, ${j}): ${DATA.product[r].map(fmt).join(", ")} = y[${i}, ${j}, :] of conv2d_forward (${DATA.y[i][j].map(fmt).join(", ")}).`;
    window.convnetState.selected = r;
  }
  p.go(0);
})();
