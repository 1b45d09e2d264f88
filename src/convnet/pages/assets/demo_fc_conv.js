// FC → CONV: the FC layer's scores and its CONV twin's 1×1×K output side by side (equal), the
// twin's filters (the FC weights reshaped), and the twin slid over a larger input: each cell of
// its score map is the FC layer on one crop.  Numbers from dense_forward and conv2d_forward.
(function () {
  const x = DATA.x, big = DATA.x_big, K = DATA.b.length, H = x.length, C = x[0][0].length, E = DATA.extra;
  const same = DATA.fc.every((v, k) => v === DATA.conv[0][0][k]);
  app.append(el("p", {class: "note", text:
    `An FC layer with ${K} neurons looking at a ${H}×${H}×${C} volume (flattened in NHWC order to ${H * H * C} numbers, ` +
    `weights ${H * H * C} × ${K}) is a CONV layer with ${K} filters of ${H}×${H}×${C}: the same weights reshaped to ${H}×${H}×${C}×${K}. ` +
    `As the notes' 7×7×512 → FC-4096 becomes CONV with F = 7. Other sizes: convnet demo fc-conv ${optionsText(DATA.options)}`}));
  const row = el("div", {class: "row"});
  const inPanel = el("div", {class: "panel"}, el("h2", {text: `Input ${H}×${H}×${C}`}));
  for (let c = 0; c < C; c++) inPanel.append(el("h3", {text: `x[:, :, ${c}]`}), grid(channel(x, c)).table);
  row.append(inPanel);
  const fPanel = el("div", {class: "panel"}, el("h2", {text: `CONV filters = FC weights reshaped`}));
  for (let k = 0; k < Math.min(K, 2); k++) for (let c = 0; c < C; c++)
    fPanel.append(el("h3", {text: `filter ${k}, channel ${c} = FC weights of neuron ${k}, rows ${c}, ${c + C}, … of ${H * H * C}`}),
                  grid(DATA.w_conv.map(r => r.map(v => v[c][k]))).table);
  if (K > 2) fPanel.append(el("div", {class: "note", text: `(filters 2 … ${K - 1} likewise)`}));
  row.append(fPanel);
  const outPanel = el("div", {class: "panel", id: "outputs"},
    el("h2", {text: "Outputs"}),
    el("h3", {text: `FC: x.reshape(1, ${H * H * C}) @ W + b`}), grid([DATA.fc]).table,
    el("h3", {text: `CONV twin: 1×1×${K}`}), grid([DATA.conv[0][0]]).table,
    el("div", {class: same ? "ok" : "bad", id: "same", text: same ? "✓ the same numbers" : "✗ different"}));
  row.append(outPanel);
  app.append(row);

  app.append(el("h2", {text: `The CONV twin on a larger input: ${H + E}×${H + E}×${C} → a ${E + 1}×${E + 1}×${K} score map`}));
  const p = player((E + 1) * (E + 1), r => select(Math.floor(r / (E + 1)), r % (E + 1)));
  app.append(p.bar);
  const row2 = el("div", {class: "row"});
  const bigCells = [];
  const bigPanel = el("div", {class: "panel"}, el("h3", {text: `Larger input (its top-left ${H}×${H} is the input above)`}));
  for (let c = 0; c < C; c++) { const t = grid(channel(big, c)); bigPanel.append(el("h3", {text: `[:, :, ${c}]`}), t.table); bigCells.push(t.cells); }
  row2.append(bigPanel);
  const mapPanel = el("div", {class: "panel"}, el("h3", {text: "Score map (click a cell)"}));
  const maps = [];
  for (let k = 0; k < K; k++) {
    const t = grid(channel(DATA.slid, k), {onclick: (i, j) => { p.pause(); select(i, j); }});
    mapPanel.append(el("h3", {text: `scores of neuron ${k}`}), t.table);
    maps.push(t.cells);
  }
  const info = el("div", {class: "panel mono", id: "dot"});
  row2.append(el("div", {}, mapPanel, info));
  app.append(row2);

  function select(i, j) {
    ["win", "out"].forEach(unmark);
    for (let c = 0; c < C; c++) for (let a = 0; a < H; a++) for (let b = 0; b < H; b++) bigCells[c][i + a][j + b].classList.add("win");
    maps.forEach(m => m[i][j].classList.add("out"));
    info.replaceChildren(el("div", {text: `cell (${i}, ${j}) = FC on the crop rows ${i}…${i + H - 1}, columns ${j}…${j + H - 1}: `},
      el("span", {class: "result", id: "dot-result", "data-value": JSON.stringify(DATA.slid[i][j]), text: DATA.slid[i][j].map(fmt).join(", ")})));
    window.convnetState.selected = [i, j];
  }
  p.go(0);
})();
