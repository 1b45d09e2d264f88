// Max pooling: input slices, output with each window's switch, and backward: the upstream
// gradient dy routed to the switch's position in dx.  Numbers from max_pool2d_forward/backward.
(function () {
  const g = DATA.geometry, x = DATA.x, y = DATA.y, sw_ = DATA.switches;
  const [kh, kw] = g.kernel, [sh, sw] = g.stride, [Ho, Wo] = g.out, pt = g.pads[0][0], pl = g.pads[1][0];
  const C = x[0][0].length;
  app.append(el("p", {class: "note", text:
    `Input ${x.length}×${x[0].length}×${C}; ${kh}×${kw} windows at stride ${sh}` + (pt || pl ? `, padding ${pt} (−∞: never the maximum)` : "") +
    ` → ${Ho}×${Wo}×${C}. The switch of an output is the position of its window's maximum (the first one, row by row, on a tie); ` +
    `backward sends the whole upstream gradient there and zero elsewhere. Other sizes: convnet demo pool ${optionsText(DATA.options)}`}));
  const p = player(C * Ho * Wo, k => select(Math.floor(k / (Ho * Wo)), Math.floor(k / Wo) % Ho, k % Wo));
  app.append(p.bar);
  const xs = [], ys = [], dys = [], dxs = [];
  const row = el("div", {class: "row"});
  const add = (title, store, arr, opts) => {
    const panel = el("div", {class: "panel"}, el("h2", {text: title}));
    for (let c = 0; c < C; c++) {
      const t = grid(channel(arr, c), opts ? {onclick: (i, j) => { p.pause(); select(c, i, j); }, faintZeros: true} : {faintZeros: true});
      panel.append(el("h3", {text: `[:, :, ${c}]`}), t.table);
      store.push(t.cells);
    }
    row.append(panel);
  };
  add("Input x", xs, x, false);
  add("Output y = max of each window", ys, y, true);
  add("Upstream gradient dy", dys, DATA.dy, true);
  add("dx: dy at the switches", dxs, DATA.dx, false);
  app.append(row);
  const info = el("div", {class: "panel mono", id: "dot"});
  app.append(info);

  function select(c, i, j) {
    ["win", "switch", "out", "routed"].forEach(unmark);
    const s = sw_[i][j][c], a = Math.floor(s / kw), b = s % kw;
    const values = [];
    for (let u = 0; u < kh; u++) for (let v = 0; v < kw; v++) {
      const r = i * sh + u - pt, q = j * sw + v - pl;
      if (r >= 0 && q >= 0 && r < x.length && q < x[0].length) { xs[c][r][q].classList.add("win"); values.push(fmt(x[r][q][c])); }
      else values.push("−∞");
    }
    const r = i * sh + a - pt, q = j * sw + b - pl;
    xs[c][r][q].classList.add("switch");
    ys[c][i][j].classList.add("out");
    dys[c][i][j].classList.add("out");
    dxs[c][r][q].classList.add("routed");
    info.replaceChildren(
      el("div", {text: `y[${i}, ${j}, ${c}] = max(${values.join(", ")}) = `},
         el("span", {class: "result", id: "dot-result", "data-value": String(y[i][j][c]), text: fmt(y[i][j][c])})),
      el("div", {text: `switch = ${s} (window row ${a}, column ${b}) → input (${r}, ${q}); backward: dx[${r}, ${q}, ${c}] += dy[${i}, ${j}, ${c}] = ${fmt(DATA.dy[i][j][c])}`}));
    window.convnetState.selected = [i, j, c];
  }
  p.go(0);
})();
