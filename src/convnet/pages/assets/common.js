"use strict";
// Shared by every convnet page: the embedded numbers, small element helpers, number grids and a
// player (play / pause / step) that walks through a list of steps.  Nothing here computes a
// number the page reports: those come from Python, in DATA.

const DATA = JSON.parse(document.getElementById("data").textContent);
window.convnetData = DATA;
window.convnetState = {};
const app = document.getElementById("app");

// el("div", {class: "panel", text: "hi"}, child, ...): a new element.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

// A number as the page writes it: integers as they are, others with 4 significant digits.
function fmt(v) {
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(3) : String(Number(v.toPrecision(4)));
}

// Channel c of a (H, W, C) nested array as a (H, W) one.
function channel(a, c) { return a.map(row => row.map(v => v[c])); }

// A table of numbers; returns {table, cells} with cells[i][j] the <td> of m[i][j].
// opts.pad = [[top, bottom], [left, right]] greys the padding; opts.onclick(i, j) makes cells clickable.
function grid(m, opts = {}) {
  const table = el("table", {class: "grid"});
  const cells = [];
  const [[pt, pb], [pl, pr]] = opts.pad || [[0, 0], [0, 0]];
  m.forEach((row, i) => {
    const tr = el("tr");
    cells.push(row.map((v, j) => {
      const inPad = i < pt || i >= m.length - pb || j < pl || j >= row.length - pr;
      const td = el("td", {text: fmt(v), class: (inPad ? "pad" : "") + (v === 0 && !inPad && opts.faintZeros ? " zero" : "")});
      td.dataset.i = i; td.dataset.j = j;
      if (opts.onclick) { td.classList.add("click"); td.addEventListener("click", () => opts.onclick(i, j)); }
      tr.append(td);
      return td;
    }));
    table.append(tr);
  });
  return {table, cells};
}

// Remove a highlight class everywhere on the page.
function unmark(cls) { document.querySelectorAll("." + cls).forEach(n => n.classList.remove(cls)); }

// A player over n steps: onStep(k) draws step k.  Returns {bar, go, play, pause}.
function player(n, onStep, interval = 900) {
  let k = -1, timer = null;
  const go = i => { k = ((i % n) + n) % n; window.convnetState.step = k; onStep(k); };
  const pause = () => { if (timer) clearInterval(timer); timer = null; };
  const play = () => { pause(); timer = setInterval(() => go(k + 1), interval); };
  const bar = el("div", {class: "controls"},
    el("button", {text: "▶ play", id: "play", onclick: () => { go(k + 1); play(); }}),
    el("button", {text: "❚❚ pause", id: "pause", onclick: pause}),
    el("button", {text: "step ▶", id: "step", onclick: () => { pause(); go(k + 1); }}),
    el("button", {text: "◀ back", id: "back", onclick: () => { pause(); go(k - 1); }}));
  return {bar, go: i => { pause(); go(i); }, play, pause};
}

// "5×5×3" from [5, 5, 3].
function dims(a) { return a.join("×"); }

// A short line of options for the page's caption.
function optionsText(o) {
  return Object.entries(o).map(([k, v]) => `--${k} ${Array.isArray(v) ? v.join("x") : v}`).join(" ");
}
