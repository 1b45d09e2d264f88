// The model explorer: the layer table and the volumes drawn W×H×D, every layer's activation maps
// (decoded from quantised PNG atlases), the first layer's filters and the top predictions.
// Clicking a map shows that neuron's receptive field on the input; for the first CONV layer also
// its dot product, from the exact float32 input and weights the engine used.
(function () {
  window.convnetReady = false;
  const layers = DATA.layers, fc = DATA.first_conv;
  const f32 = b64 => { const s = atob(b64), u = new Uint8Array(s.length); for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i); return new Float32Array(u.buffer); };
  const loadImage = url => new Promise((ok, fail) => { const im = new Image(); im.onload = () => ok(im); im.onerror = fail; im.src = url; });
  const pixels = im => { const c = document.createElement("canvas"); c.width = im.width; c.height = im.height; const x = c.getContext("2d"); x.drawImage(im, 0, 0); return x.getImageData(0, 0, im.width, im.height).data; };
  const [IH, IW, IC] = DATA.input.shape;

  app.append(el("p", {class: "note", text: `${DATA.name}: input ${dims(DATA.input.shape)}, ${layers.length} layers, ` +
    `${DATA.totals.params.toLocaleString("en")} parameters, ${DATA.totals.macs.toLocaleString("en")} multiply-adds. Weights: ${DATA.weights}. Input: ${DATA.image_source}.`}));

  // --- top row: input with the receptive field, predictions, neuron info, first-layer filters
  const top = el("div", {class: "row"});
  const scale = Math.max(1, Math.floor(224 / Math.max(IH, IW)));
  const inCanvas = el("canvas", {id: "input", width: IW * scale, height: IH * scale, class: "maps"});
  top.append(el("div", {class: "panel"}, el("h3", {text: `Input ${dims(DATA.input.shape)}`}), inCanvas));
  const preds = el("div", {class: "panel bars", id: "predictions"}, el("h3", {text: "Top predictions"}));
  DATA.top.forEach(t => preds.append(el("div", {}, el("span", {class: "mono", text: String(t.class).padEnd(6)}),
    el("span", {class: "bar", style: `width: ${Math.max(1, Math.round(t.p * 160))}px`}), el("span", {text: (100 * t.p).toFixed(1) + "%"}))));
  top.append(preds);
  const info = el("div", {class: "panel mono", id: "dot", style: "max-width: 560px"}, "Click a neuron in any activation map.");
  top.append(info);
  app.append(top);

  // --- layer table beside the volumes
  const mid = el("div", {class: "row"});
  const table = el("table", {class: "summary", id: "summary"},
    el("tr", {}, ...["layer", "type", "output H×W×D", "params", "MACs", "receptive field"].map(t => el("th", {text: t}))));
  DATA.summary.forEach(r => {
    const tr = el("tr", {onclick: () => { const n = document.getElementById("layer-" + r.name); if (n) n.scrollIntoView({block: "center"}); }},
      ...[r.name, r.type, r.shape, r.params.toLocaleString("en"), r.macs.toLocaleString("en"), r.rf.join("×")].map(t => el("td", {text: t})));
    tr.dataset.name = r.name;
    table.append(tr);
  });
  mid.append(el("div", {class: "panel scroll"}, el("h3", {text: "convnet summary"}), table));
  mid.append(el("div", {class: "panel", style: "max-width: 100%; overflow-x: auto"}, el("h3", {text: "Volumes (W×H×D, drawn on a log scale)"}), volumes()));
  app.append(mid);

  // Boxes W×H×D for every 3-D output (log-scaled), in order.
  function volumes() {
    const ns = "http://www.w3.org/2000/svg";
    const shown = [["input", DATA.input.shape], ...layers.filter(l => l.shape.length === 3 && l.maps).map(l => [l.name, l.shape])];
    const sz = v => 6 + 9 * Math.log2(1 + v);
    let x = 10;
    const svg = document.createElementNS(ns, "svg");
    const H = 150;
    shown.forEach(([name, [h, w, d]]) => {
      const fw = sz(w) * 0.5, fh = sz(h) * 0.9, dep = sz(d) * 0.35;
      const y0 = H - 30 - fh;
      const g = document.createElementNS(ns, "g");
      const poly = (pts, fill) => { const p = document.createElementNS(ns, "polygon"); p.setAttribute("points", pts.map(q => q.join(",")).join(" ")); p.setAttribute("fill", fill); p.setAttribute("stroke", "#55606f"); p.setAttribute("stroke-width", "0.6"); g.append(p); };
      poly([[x, y0], [x + dep, y0], [x + dep, y0 + fh], [x, y0 + fh]], "#f0c79a");  // the D face
      poly([[x, y0], [x + fw * 0.6, y0 - fw * 0.5], [x + dep + fw * 0.6, y0 - fw * 0.5], [x + dep, y0]], "#f7dcbc");
      poly([[x + dep, y0], [x + dep + fw * 0.6, y0 - fw * 0.5], [x + dep + fw * 0.6, y0 + fh - fw * 0.5], [x + dep, y0 + fh]], "#e3a96f");
      const label = document.createElementNS(ns, "text");
      label.setAttribute("x", x); label.setAttribute("y", H - 16); label.textContent = `${w}×${h}×${d}`;
      const title = document.createElementNS(ns, "title"); title.textContent = name; g.append(title, label);
      g.style.cursor = "pointer";
      g.addEventListener("click", () => { const n = document.getElementById("layer-" + name); if (n) n.scrollIntoView({block: "center"}); });
      svg.append(g);
      x += Math.max(dep + fw * 0.6 + 14, label.textContent.length * 7 + 12);
    });
    svg.setAttribute("width", x + 10); svg.setAttribute("height", H);
    return svg;
  }

  // --- filters of the first CONV layer, on one scale
  if (fc) {
    const [kh, kw, C, K] = fc.w_shape, w = f32(fc.w), n = fc.filters_shown;
    let lo = Infinity, hi = -Infinity;
    w.forEach(v => { lo = Math.min(lo, v); hi = Math.max(hi, v); });
    const cols = Math.ceil(Math.sqrt(n)), s = Math.max(2, Math.min(Math.floor(44 / Math.max(kh, kw)), Math.floor(300 / (cols * (kw + 1)))));
    const cv = el("canvas", {id: "filters", width: cols * (kw * s + 2), height: Math.ceil(n / cols) * (kh * s + 2), class: "maps"});
    const ctx = cv.getContext("2d");
    for (let k = 0; k < n; k++) for (let a = 0; a < kh; a++) for (let b = 0; b < kw; b++) {
      const at = c => (w[((a * kw + b) * C + c) * K + k] - lo) / (hi - lo || 1) * 255;
      const rgb = C === 3 ? [at(0), at(1), at(2)] : [at(0), at(0), at(0)];
      ctx.fillStyle = `rgb(${rgb.map(Math.round).join(",")})`;
      ctx.fillRect((k % cols) * (kw * s + 2) + b * s, Math.floor(k / cols) * (kh * s + 2) + a * s, s, s);
    }
    top.append(el("div", {class: "panel"}, el("h3", {text: `${fc.layer}: ${n} of ${K} filters ${kh}×${kw}×${C}` + (C === 3 ? " (RGB)" : C === 1 ? "" : " (channel 0)")}), cv));
  }

  // --- every layer's maps
  app.append(el("h2", {text: `Activation maps (each layer on one colour scale; at most ${DATA.max_channels} channels a layer` +
    (DATA.max_side ? `; maps larger than ${DATA.max_side} px shown as block means` : "") + ")"}));
  const blocks = el("div", {id: "layers"});
  app.append(blocks);
  const decoded = {};

  // A layer's colour for value v: diverging (blue < 0 < red) when it has negatives, else black → yellow.
  function colour(v, lo, hi) {
    if (lo < 0) { const m = Math.max(-lo, hi) || 1, t = Math.max(-1, Math.min(1, v / m));
      return t < 0 ? [255 * (1 + t), 255 * (1 + t), 255] : [255, 255 * (1 - t), 255 * (1 - t)]; }
    const t = hi > 0 ? Math.max(0, Math.min(1, v / hi)) : 0;
    return [255 * Math.min(1, t * 1.6), 255 * Math.max(0, t * 1.4 - 0.3), 60 * t];
  }

  async function drawLayer(layer, index) {
    const m = layer.maps, v = layer.vector;
    const im = await loadImage((m || v).png);
    const q = pixels(im);  // RGBA of the grey atlas
    const block = el("div", {class: "layer", id: "layer-" + layer.name});
    const head = `#${index + 1}/${layers.length}  ${layer.name}  ${layer.kind}  ${dims(layer.shape)}`;
    if (m) {
      const lo = Math.min(...m.min), hi = Math.max(...m.max);
      const gap = 2, s = Math.max(1, Math.floor(72 / Math.max(m.h, m.w))), cols = Math.min(m.cols, Math.max(1, Math.floor(1100 / ((m.w + gap) * s))));
      const rows = Math.ceil(m.shown / cols);
      const cv = el("canvas", {class: "maps", width: cols * (m.w + gap), height: rows * (m.h + gap)});
      cv.style.width = cols * (m.w + gap) * s + "px";
      const ctx = cv.getContext("2d"), img = ctx.createImageData(cv.width, cv.height);
      const value = (ch, i, j) => { const r = Math.floor(ch / m.cols), c = ch % m.cols;
        const g = q[((r * m.h + i) * m.cols * m.w + c * m.w + j) * 4]; return m.min[ch] + g / 255 * (m.max[ch] - m.min[ch]); };
      for (let ch = 0; ch < m.shown; ch++) {
        const ox = (ch % cols) * (m.w + gap), oy = Math.floor(ch / cols) * (m.h + gap);
        for (let i = 0; i < m.h; i++) for (let j = 0; j < m.w; j++) {
          const [r, g, b] = colour(value(ch, i, j), lo, hi), o = ((oy + i) * cv.width + ox + j) * 4;
          img.data[o] = r; img.data[o + 1] = g; img.data[o + 2] = b; img.data[o + 3] = 255;
        }
      }
      ctx.putImageData(img, 0, 0);
      cv.addEventListener("click", e => {
        const px = Math.floor(e.offsetX / s), py = Math.floor(e.offsetY / s);
        const col = Math.floor(px / (m.w + gap)), row = Math.floor(py / (m.h + gap)), j = px % (m.w + gap), i = py % (m.h + gap);
        const ch = row * cols + col;
        if (ch < m.shown && i < m.h && j < m.w) selectNeuron(layer.name, ch, i * m.factor, j * m.factor);
      });
      decoded[layer.name] = {value, layer};
      const shown = m.shown < m.channels ? `${m.shown} of ${m.channels} channels` : `${m.channels} channels`;
      block.append(el("h3", {text: `${head} · ${shown} · values ${fmt(lo)} … ${fmt(hi)}` + (m.factor > 1 ? ` · shown as ${m.factor}×${m.factor} block means` : "")}),
                   el("div", {class: "panel"}, cv));
    } else {
      const s = 6, cv = el("canvas", {class: "maps", width: v.cols, height: v.rows});
      cv.style.width = v.cols * s + "px";
      const ctx = cv.getContext("2d"), img = ctx.createImageData(v.cols, v.rows);
      const value = k => v.min + q[k * 4] / 255 * (v.max - v.min);
      for (let k = 0; k < v.length; k++) {
        const [r, g, b] = colour(value(k), v.min, v.max);
        img.data.set([r, g, b, 255], k * 4);
      }
      ctx.putImageData(img, 0, 0);
      cv.addEventListener("click", e => { const k = Math.floor(e.offsetY / s) * v.cols + Math.floor(e.offsetX / s); if (k < v.length) selectNeuron(layer.name, k, 0, 0); });
      decoded[layer.name] = {value: (k) => value(k), layer};
      block.append(el("h3", {text: `${head} · ${v.length} values ${fmt(v.min)} … ${fmt(v.max)} (one pixel each, row by row)`}), el("div", {class: "panel"}, cv));
    }
    return block;
  }

  // Show neuron (channel ch, row i, column j) of a layer: value, receptive field, and for the
  // first CONV layer the dot product from the exact input and weights.
  function selectNeuron(name, ch, i, j) {
    const d = decoded[name], layer = d.layer, f = layer.field;
    const flat = !layer.maps;
    const factor = flat ? 1 : layer.maps.factor;
    const value = flat ? d.value(ch) : d.value(ch, Math.floor(i / factor), Math.floor(j / factor));
    document.querySelectorAll(".layer.selected").forEach(n => n.classList.remove("selected"));
    document.getElementById("layer-" + name).classList.add("selected");
    document.querySelectorAll("#summary tr").forEach(tr => tr.classList.toggle("hit", tr.dataset.name === name));
    const rf = flat ? [0, 0, IH, IW] : [f.start[0] + i * f.jump[0], f.start[1] + j * f.jump[1],
                                         f.size[0] + (factor - 1) * f.jump[0], f.size[1] + (factor - 1) * f.jump[1]];
    drawInput(rf);
    const lines = [el("div", {text: `${name} (${layer.kind}) ` + (flat ? `value ${ch}` : `channel ${ch}, row ${i}, column ${j}`) +
      `: ≈ ${fmt(value)}` + (factor > 1 ? ` (mean of the ${factor}×${factor} block)` : "") + " (quantised to 8 bits)"}),
      el("div", {id: "receptive-field", "data-rect": JSON.stringify(rf), text: `receptive field: input rows ${rf[0]}…${rf[0] + rf[2] - 1}, columns ${rf[1]}…${rf[1] + rf[3] - 1}` +
        ` (${rf[2]}×${rf[3]}${rf[0] < 0 || rf[1] < 0 || rf[0] + rf[2] > IH || rf[1] + rf[3] > IW ? ", partly padding" : ""})`})];
    if (fc && name === fc.layer) lines.push(...dotProduct(ch, i, j));
    else if (fc) lines.push(el("div", {class: "note", text: `The dot product is written out for the first layer (${fc.layer}); deeper layers show their receptive field and value.`}));
    info.replaceChildren(...lines);
    window.convnetState.selected = {layer: name, channel: ch, row: i, column: j};
  }

  let xExact = null, wExact = null, bExact = null;
  function dotProduct(k, i, j) {
    xExact = xExact || f32(fc.x); wExact = wExact || f32(fc.w); bExact = bExact || f32(fc.b);
    const [kh, kw, C, K] = fc.w_shape, [sh, sw] = fc.stride, [dh, dw] = fc.dilation, pt = fc.pads[0][0], pl = fc.pads[1][0];
    const terms = [];
    let sum = 0;
    for (let a = 0; a < kh; a++) for (let b = 0; b < kw; b++) for (let c = 0; c < C; c++) {
      const r = i * sh + a * dh - pt, q = j * sw + b * dw - pl;
      const xv = r >= 0 && q >= 0 && r < IH && q < IW ? xExact[(r * IW + q) * IC + c] : 0;
      const wv = wExact[((a * kw + b) * C + c) * K + k];
      sum += xv * wv;
      terms.push(`${fmt(xv)}·${fmt(wv)}`);
    }
    const total = sum + bExact[k];
    const shown = terms.length > 36 ? terms.slice(0, 36).join(" + ") + ` + … (${terms.length} terms)` : terms.join(" + ");
    return [el("div", {class: "line", text: `dot product (input × filter ${k}, ${kh}×${kw}×${C}): ${shown}`}),
            el("div", {}, `= ${fmt(sum)} + bias ${fmt(bExact[k])} = `, el("span", {class: "result", id: "dot-result", "data-value": String(total), text: fmt(total)}),
               " (float64 in your browser from the float32 numbers the engine used)")];
  }

  let inputPixels = null;
  function drawInput(rect) {
    const ctx = inCanvas.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(inputPixels, 0, 0, IW * scale, IH * scale);
    if (!rect) return;
    ctx.strokeStyle = "#ff3b1f"; ctx.lineWidth = 2;
    ctx.strokeRect(rect[1] * scale + 1, rect[0] * scale + 1, rect[3] * scale - 2, rect[2] * scale - 2);
    ctx.fillStyle = "rgba(255, 200, 40, 0.18)";
    ctx.fillRect(rect[1] * scale, rect[0] * scale, rect[3] * scale, rect[2] * scale);
  }

  window.convnetExplore = {selectNeuron};
  (async () => {
    inputPixels = await loadImage(DATA.input.png);
    drawInput(null);
    for (let n = 0; n < layers.length; n++) blocks.append(await drawLayer(layers[n], n));
    window.convnetReady = true;
  })().catch(e => { console.error("explorer: " + e); });
})();
