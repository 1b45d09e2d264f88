// The convolution demo: input volume (padded) | filters and biases | output volume, and the dot
// product of the selected output cell written out.  Output values are DATA.y (conv2d_forward).
(function () {
  const g = DATA.geometry, xp = DATA.x_padded, w = DATA.w, b = DATA.b, y = DATA.y;
  const [kh, kw] = g.kernel, [sh, sw] = g.stride, [dh, dw] = g.dilation;
  const C = xp[0][0].length, K = b.length, [Ho, Wo] = g.out;
  const H = DATA.x.length, W = DATA.x[0].length;

  app.append(el("p", {class: "note", text:
    `Input ${H}×${W}×${C}, zero-padded by ${g.pads[0][0]} → ${g.padded[0]}×${g.padded[1]}×${C} (grey: padding). ` +
    `${K} filters of ${kh}×${kw}×${C}, stride ${sh === sw ? sh : sh + "×" + sw}` +
    (dh > 1 || dw > 1 ? `, dilation ${dh}×${dw}` : "") + ` → output ${Ho}×${Wo}×${K}. ` +
    `Click an output cell, or play. Other sizes: convnet demo conv ${optionsText(DATA.options)}`}));
  const p = player(K * Ho * Wo, k => select(Math.floor(k / (Ho * Wo)) % K, Math.floor(k / Wo) % Ho, k % Wo));
  app.append(p.bar);

  const row = el("div", {class: "row"});
  const inputs = [], filters = [], outputs = [], filterPanels = [];
  const inPanel = el("div", {class: "panel"}, el("h2", {text: `Input volume (+pad ${g.pads[0][0]}) ${dims([g.padded[0], g.padded[1], C])}`}));
  for (let c = 0; c < C; c++) {
    const t = grid(channel(xp, c), {pad: g.pads});
    inPanel.append(el("h3", {text: `x[:, :, ${c}]`}), t.table);
    inputs.push(t.cells);
  }
  row.append(inPanel);
  for (let k = 0; k < K; k++) {
    const panel = el("div", {class: "panel", id: `filter-${k}`}, el("h2", {text: `Filter W${k} ${dims([kh, kw, C])}`}));
    filters.push([]);
    for (let c = 0; c < C; c++) {
      const t = grid(w.map(r => r.map(v => v[c][k])));
      panel.append(el("h3", {text: `w${k}[:, :, ${c}]`}), t.table);
      filters[k].push(t.cells);
    }
    panel.append(el("h3", {text: `Bias b${k}`}), grid([[b[k]]]).table);
    filterPanels.push(panel);
    row.append(panel);
  }
  const outPanel = el("div", {class: "panel"}, el("h2", {text: `Output volume ${dims([Ho, Wo, K])}`}));
  for (let k = 0; k < K; k++) {
    const t = grid(channel(y, k), {onclick: (i, j) => { p.pause(); select(k, i, j); }});
    t.table.id = `output-${k}`;
    outPanel.append(el("h3", {text: `o[:, :, ${k}]`}), t.table);
    outputs.push(t.cells);
  }
  const dot = el("div", {class: "panel dot mono", id: "dot", style: "max-width: 520px"},
                 "Click an output cell to see its dot product.");
  row.append(el("div", {}, outPanel, dot));
  app.append(row);

  // Highlight the window, the filter and the output cell of output (i, j, k); write the dot product.
  function select(k, i, j) {
    ["win", "filt", "out"].forEach(unmark);
    filterPanels.forEach((panel, n) => panel.classList.toggle("active", n === k));
    outputs[k][i][j].classList.add("out");
    const lines = [];
    let total = 0;
    for (let c = 0; c < C; c++) {
      const terms = [];
      let sum = 0;
      for (let a = 0; a < kh; a++) for (let bb = 0; bb < kw; bb++) {
        const r = i * sh + a * dh, q = j * sw + bb * dw;
        inputs[c][r][q].classList.add("win");
        filters[k][c][a][bb].classList.add("filt");
        terms.push(`${fmt(xp[r][q][c])}·${fmt(w[a][bb][c][k])}`);
        sum += xp[r][q][c] * w[a][bb][c][k];
      }
      total += sum;
      lines.push(el("div", {class: "line"}, `channel ${c}: ${terms.join(" + ")} = ${fmt(sum)}`));
    }
    const value = y[i][j][k];
    const check = total + b[k] === value ? el("span", {class: "ok", text: "  ✓ equals the engine's output"})
                                         : el("span", {class: "bad", text: `  ✗ the page's sum is ${fmt(total + b[k])}`});
    dot.replaceChildren(
      el("div", {text: `o[${i}, ${j}, ${k}] = Σ window × W${k} + b${k}   (window: rows ${i * sh}…${i * sh + (kh - 1) * dh}, ` +
                       `columns ${j * sw}…${j * sw + (kw - 1) * dw} of the padded input)`}),
      ...lines,
      el("div", {class: "line"}, `sum of channels + b${k} = ${fmt(total)} + ${fmt(b[k])} = `, el("span", {class: "result", id: "dot-result", "data-value": String(value), text: fmt(value)}), check));
    window.convnetState.selected = [i, j, k];
  }
  p.go(0);
})();
