// Backward of a CONV is a CONV: dy with stride − 1 zeros between its values, padded by
// dilation·(kernel − 1), convolved with the flipped filters gives dx (after cropping the forward
// padding).  The page shows the engine's dx (conv2d_backward) and the convolution's, both from Python.
(function () {
  const g = DATA.geometry, [kh, kw] = g.kernel, [dh, dw] = g.dilation, [fh, fw] = DATA.full_pad;
  const up = DATA.dy_up, K = up[0][0].length, C = DATA.x[0][0].length, wf = DATA.w_flipped;
  const pt = g.pads[0][0], pl = g.pads[1][0];
  // dy↑ padded by the full padding, as the convolution reads it
  const full = Array.from({length: up.length + 2 * fh}, (_, r) => Array.from({length: up[0].length + 2 * fw}, (_, q) =>
    Array.from({length: K}, (_, k) => (r >= fh && q >= fw && r < fh + up.length && q < fw + up[0].length) ? up[r - fh][q - fw][k] : 0)));
  app.append(el("p", {class: "note", text:
    `Forward: ${dims([DATA.x.length, DATA.x[0].length, C])} input, ${K} filters ${kh}×${kw}, stride ${g.stride.join("×")}, padding ${pt} → ${dims(g.out)}×${K}. ` +
    `Backward: dy gets ${g.stride[0] - 1} zero(s) between its values (stride ${g.stride[0]}), ${fh} zero(s) around (dilation·(kernel − 1)), and is convolved ` +
    `with each filter rotated by 180° (input and output channels swapped); cropping the forward padding (${pt}) leaves dx. ` +
    `The weight gradient is a convolution too (the input with dy as the filter); both equal conv2d_backward's, checked in Python. ` +
    `Other sizes: convnet demo backward ${optionsText(DATA.options)}`}));
  const n = DATA.dx_padded.length, m = DATA.dx_padded[0].length;
  const p = player(C * n * m, s => select(Math.floor(s / (n * m)), Math.floor(s / m) % n, s % m));
  app.append(p.bar);
  const row = el("div", {class: "row"});
  const ups = [], fls = [], dxs = [];
  const dyPanel = el("div", {class: "panel"}, el("h2", {text: `dy ${dims([DATA.dy.length, DATA.dy[0].length, K])} → spread and padded`}));
  for (let k = 0; k < K; k++) {
    dyPanel.append(el("h3", {text: `dy[:, :, ${k}]`}), grid(channel(DATA.dy, k)).table);
    const t = grid(channel(full, k), {pad: [[fh, fh], [fw, fw]], faintZeros: true});
    dyPanel.append(el("h3", {text: `spread and padded`}), t.table);
    ups.push(t.cells);
  }
  row.append(dyPanel);
  const wPanel = el("div", {class: "panel"}, el("h2", {text: "Filters, flipped"}));
  for (let c = 0; c < C; c++) {
    fls.push([]);
    for (let k = 0; k < K; k++) {
      wPanel.append(el("h3", {text: `w[:, :, ${c}, ${k}] rotated 180°`}));
      const t = grid(wf.map(r => r.map(v => v[k][c])));
      wPanel.append(t.table);
      fls[c].push(t.cells);
    }
  }
  row.append(wPanel);
  const dxPanel = el("div", {class: "panel"}, el("h2", {text: "dx by the convolution (grey: the padding, cropped)"}));
  for (let c = 0; c < C; c++) {
    const t = grid(channel(DATA.dx_padded, c), {pad: g.pads, onclick: (i, j) => { p.pause(); select(c, i, j); }});
    dxPanel.append(el("h3", {text: `[:, :, ${c}]`}), t.table);
    dxs.push(t.cells);
  }
  for (let c = 0; c < C; c++) dxPanel.append(el("h3", {text: `conv2d_backward's dx[:, :, ${c}]`}), grid(channel(DATA.dx, c)).table);
  const info = el("div", {class: "panel mono", id: "dot", style: "max-width: 520px"});
  row.append(el("div", {}, dxPanel, info));
  app.append(row);

  function select(c, i, j) {
    ["win", "filt", "out"].forEach(unmark);
    const terms = [];
    for (let k = 0; k < K; k++) for (let a = 0; a < kh; a++) for (let b = 0; b < kw; b++) {
      const r = i + a * dh, q = j + b * dw;
      ups[k][r][q].classList.add("win");
      fls[c][k][a][b].classList.add("filt");
      if (full[r][q][k] !== 0) terms.push(`${fmt(full[r][q][k])}·${fmt(wf[a][b][k][c])}`);
    }
    dxs[c][i][j].classList.add("out");
    const v = DATA.dx_padded[i][j][c];
    const cropped = i < pt || j < pl || i >= n - g.pads[0][1] || j >= m - g.pads[1][1];
    info.replaceChildren(el("div", {text: `dx_padded[${i}, ${j}, ${c}] = ${terms.length ? terms.join(" + ") : "0 (no gradient reaches it)"} = `},
      el("span", {class: "result", id: "dot-result", "data-value": String(v), text: fmt(v)})),
      el("div", {class: "note", text: cropped ? "This position is padding: it is cropped away." :
        `= dx[${i - pt}, ${j - pl}, ${c}] = ${fmt(DATA.dx[i - pt][j - pl][c])} of conv2d_backward.`}));
    window.convnetState.selected = [i, j, c];
  }
  p.go(pt * m + pl);  // the first position that is not padding
})();
