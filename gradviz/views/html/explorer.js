// The gradviz explorer: hover for numbers, click a leaf for its paths and the chain rule, step through
// backprop, collapse layers. Everything it shows was computed by gradviz and embedded in #gradviz-data;
// this script only looks things up and restyles the drawing.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("gradviz-data").textContent);
  const $ = (id) => document.getElementById(id);
  const E = data.edges.length;
  const LARGE = 600;  // drawn nodes and edges past which a drawing moves as a painted picture (paintedGestures)
  const views = {};  // name -> {div, svg, panzoom}
  let view = null;
  let picked = null;  // {start: [node ids], edges: Set of edge indexes} or null
  let step = null;  // index into data.steps while stepping through backprop, else null

  // --- numbers ------------------------------------------------------------------------------------
  // a scalar at full precision: JavaScript's shortest round-trip form, as Python's repr and JSON write it
  const num = (v) => (v === null || v === undefined ? "—" : String(v));

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    for (const c of children) e.append(c);
    return e;
  }

  function shapeText(shape) { return shape.length ? "(" + shape.join(",") + ")" : "scalar"; }

  // a value: a number, or an array as a small table (all its elements) or a heatmap, with min, max and norm
  function valueView(v) {
    if (v === null || typeof v !== "object") return el("span", typeof v === "string" ? { class: "warn" } : {}, num(v));
    const box = el("div", {});
    box.append(el("div", { class: "dim" }, shapeText(v.shape) + (v.bad ? ` · ${v.bad} NaN or inf` : "")));
    box.append(el("div", {}, `min ${num(v.min)}`), el("div", {}, `max ${num(v.max)}`), el("div", {}, `‖·‖ ${num(v.norm)}`));
    const cols = v.shape.length > 1 ? v.shape.slice(1).reduce((a, b) => a * b, 1) : v.shape[0];
    if (v.data && v.data.length <= 16) {
      const table = el("table", { class: "arr" });
      for (let r = 0; r < v.data.length / cols; r++) {
        table.append(el("tr", {}, ...v.data.slice(r * cols, (r + 1) * cols).map((x) => el("td", {}, num(x)))));
      }
      box.append(table);
    } else {
      box.append(heatmap(v, cols));
    }
    return box;
  }

  function heatmap(v, cols) {
    let rows, ncols, cell;
    if (v.data) {
      rows = v.data.length / cols; ncols = cols;
      cell = (i) => (typeof v.data[i] === "number" ? v.data[i] : null);
    } else {
      const h = v.heat, bytes = atob(h.cells);
      rows = h.rows; ncols = h.cols;
      cell = (i) => (bytes.charCodeAt(i) === 255 ? null : h.lo + (bytes.charCodeAt(i) / 254) * (h.hi - h.lo));
    }
    // the sign is what a gradient's reader looks for first: negative blue, positive orange, 0 grey, darker as
    // the size grows towards the largest |value|; NaN or inf red
    let top = 0;
    for (let i = 0; i < rows * ncols; i++) { const x = cell(i); if (x !== null) top = Math.max(top, Math.abs(x)); }
    const size = Math.max(2, Math.min(10, Math.floor(160 / Math.max(rows, ncols))));
    const canvas = el("canvas", { class: "heat", width: ncols, height: rows });
    canvas.style.width = ncols * size + "px";
    canvas.style.height = rows * size + "px";
    const ctx = canvas.getContext("2d");
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < ncols; c++) {
        const x = cell(r * ncols + c);
        const t = x === null || top === 0 ? 0 : Math.abs(x) / top;
        ctx.fillStyle = x === null ? "#dc2626" : x === 0 ? "#9ca3af"
          : `hsl(${x < 0 ? 215 : 28}, ${40 + 50 * t}%, ${82 - 47 * t}%)`;
        ctx.fillRect(c, r, 1, 1);
      }
    }
    const note = v.data || v.heat.exact ? "its elements" : `${rows} × ${ncols} block means`;
    return el("div", {}, canvas, el("span", { class: "dim" }, `${note}: negative blue, positive orange, 0 grey`));
  }

  function nums(pairs) {
    const dl = el("dl", { class: "nums" });
    for (const [k, v] of pairs) dl.append(el("dt", {}, k), el("dd", {}, valueView(v)));
    return dl;
  }

  // --- what a drawn element stands for ------------------------------------------------------------------
  function nodeInfo(id) {
    const n = data.nodes[id];
    const box = el("div", {});
    const head = el("div", { class: "head" }, n.label);
    box.append(head);
    const kind = n.kind === "op" ? "operation " + n.op : n.kind === "output" ? "output" + (n.op ? " (" + n.op + ")" : "") : n.kind;
    box.append(el("div", { class: "dim" }, `${kind} · ${shapeText(n.shape)}` + (n.cluster ? ` · in ${n.cluster}` : "")));
    const pairs = [["value", n.value]];
    if (n.grad !== null) pairs.push(["grad", n.grad]);
    if (n.tangent !== undefined) pairs.push([`∂·/∂${data.wrt}`, n.tangent]);  // forward mode
    box.append(nums(pairs));
    if (n.nondiff) box.append(el("div", { class: "warn" }, "⚠ not differentiable here: its local partial is taken as 0"));
    return box;
  }

  function edgeInfo(i) {
    const e = data.edges[i];
    const box = el("div", {});
    box.append(el("div", { class: "head" }, `${data.nodes[e.src].label} → ${data.nodes[e.dst].label}`));
    if (e.const) {
      box.append(el("div", { class: "dim" }, "a constant feeds the operation: no gradient flows back to it"));
      return box;
    }
    box.append(el("div", {}, e.rule));
    const pairs = [["local", e.local], ["upstream", e.upstream], ["chain", e.chain]];
    if (e.tangent !== undefined) pairs.push([`share of ∂·/∂${data.wrt}`, e.tangent]);  // forward mode
    box.append(nums(pairs));
    box.append(el("div", { class: "dim" }, "chain = upstream × local: this edge's share of the gradient of " + data.nodes[e.src].label));
    return box;
  }

  // --- the drawings -------------------------------------------------------------------------------------
  function prepare(div) {
    const svg = div.querySelector("svg");
    // the <title> Graphviz writes would pop up the browser's own tooltip ("n7") over ours: keep it as data
    for (const g of svg.querySelectorAll("g.node, g.edge, g.cluster")) {
      const title = g.querySelector(":scope > title");
      if (!title) continue;
      const name = title.textContent;
      title.remove();
      if (g.classList.contains("cluster")) g.dataset.block = name.replace("cluster_", "");
      else if (g.classList.contains("edge")) g.dataset.edge = g.id.startsWith("e") ? g.id.slice(1) : "";
      else if (/^n\d+$/.test(name)) g.dataset.node = name.slice(1);
      else if (/^b\d+$/.test(name)) { g.dataset.block = name.slice(1); g.classList.add("block"); }
      else if (/^leaf_\d+$/.test(name)) g.dataset.leaf = Object.keys(data.leaves)[+name.slice(5)];
    }
    svg.removeAttribute("width");
    svg.removeAttribute("height");
    const entry = { div, svg, panzoom: null, nodes: {}, edges: {}, drawnEdges: [], clusters: {}, blocks: {},
                    large: svg.querySelectorAll("g.node, g.edge").length > LARGE };
    for (const g of svg.querySelectorAll("g.node")) {
      if (g.dataset.node !== undefined) entry.nodes[g.dataset.node] = g;
      if (g.dataset.block !== undefined) entry.blocks[g.dataset.block] = g;
    }
    for (const g of svg.querySelectorAll("g.cluster")) entry.clusters[g.dataset.block] = g;
    // a folded layer draws its first call's edges only: every edge maps to the one drawn in its place
    const drawnKey = (e) => `${data.nodes[e.src].drawn}-${data.nodes[e.dst].drawn}-${e.arg}`;
    const byKey = {};
    for (const g of svg.querySelectorAll("g.edge")) {
      if (!g.dataset.edge) continue;
      const e = data.edges[+g.dataset.edge];
      byKey[drawnKey(e)] = g;
      // NaN or inf stays red when its path is highlighted, as in the figure of --wrt
      if (typeof e.chain === "string" || (e.chain && e.chain.bad)) g.classList.add("bad");
      entry.drawnEdges.push(g);
    }
    data.edges.forEach((e, i) => { if (byKey[drawnKey(e)]) entry.edges[i] = byKey[drawnKey(e)]; });
    for (const text of svg.querySelectorAll("g.node > text, g.edge > text")) {
      const t = text.textContent;
      if (t.startsWith("grad = ") || t.startsWith("chain = ")) text.dataset.full = t;
    }
    let down = null;  // a click that ends a drag is no click
    svg.addEventListener("pointerdown", (ev) => { down = [ev.clientX, ev.clientY]; });
    svg.addEventListener("click", (ev) => {
      if (down && Math.hypot(ev.clientX - down[0], ev.clientY - down[1]) > 4) return;
      clicked(ev.target.closest("g.node, g.edge, g.cluster"));
    });
    svg.addEventListener("mouseover", (ev) => hover(ev.target.closest("g.node, g.edge"), ev));
    svg.addEventListener("mousemove", (ev) => placeTip(ev));
    svg.addEventListener("mouseleave", () => { $("tip").hidden = true; });
    return entry;
  }

  function show(name, focus) {
    if (view === views[name]) return;
    for (const v of Object.values(views)) v.div.hidden = v !== views[name];
    view = views[name];
    if (!view.panzoom) {
      view.panzoom = svgPanZoom(view.svg, { fit: true, center: true, minZoom: 0.02, maxZoom: 40,
        zoomScaleSensitivity: 0.25, dblClickZoomEnabled: false, controlIconsEnabled: false });
      if (view.large) paintedGestures(view);
    }
    const button = $("layers");
    button.textContent = name === "collapsed" ? "expand layers" : "collapse layers";
    if (focus) zoomTo(focus);
    restyle();
  }

  // A large drawing costs hundreds of milliseconds to paint (thousands of paths and texts): it would pan at a
  // few frames per second. There a drag or a turn of the wheel moves the picture already painted (a CSS
  // transform of the <svg>, which the browser composites without painting) and is handed to svg-pan-zoom,
  // which paints once, when the gesture ends.
  function paintedGestures(v) {
    const pz = v.panzoom;
    pz.disablePan();
    pz.disableMouseWheelZoom();
    v.div.classList.add("large");
    let drag = null, wheel = null;
    v.svg.addEventListener("pointerdown", (ev) => {
      if (ev.button === 0) drag = { x: ev.clientX, y: ev.clientY, dx: 0, dy: 0 };
    });
    window.addEventListener("pointermove", (ev) => {
      if (!drag) return;
      drag.dx = ev.clientX - drag.x;
      drag.dy = ev.clientY - drag.y;
      v.svg.style.transform = `translate(${drag.dx}px, ${drag.dy}px)`;
      $("tip").hidden = true;
    });
    const drop = () => {
      if (!drag) return;
      const { dx, dy } = drag;
      drag = null;
      v.svg.style.transform = "";
      if (dx || dy) pz.panBy({ x: dx, y: dy });
    };
    window.addEventListener("pointerup", drop);
    window.addEventListener("pointercancel", drop);
    v.svg.addEventListener("wheel", (ev) => {
      ev.preventDefault();
      if (!wheel) {
        const r = v.svg.getBoundingClientRect();
        wheel = { x: ev.clientX - r.left, y: ev.clientY - r.top, factor: 1, timer: null };
        v.svg.style.transformOrigin = `${wheel.x}px ${wheel.y}px`;
      }
      // the same rate as svg-pan-zoom's own wheel: 1.25 × per notch of 100 pixels
      wheel.factor *= Math.pow(1.25, -Math.sign(ev.deltaY) * Math.min(Math.abs(ev.deltaY) / 100, 3));
      v.svg.style.transform = `scale(${wheel.factor})`;
      clearTimeout(wheel.timer);
      wheel.timer = setTimeout(() => {
        const { x, y, factor } = wheel;
        wheel = null;
        v.svg.style.transform = "";
        pz.zoomAtPointBy(factor, { x, y });
      }, 200);
    }, { passive: false });
  }

  function zoomTo(g) {
    // centre the element, zoomed so that it fills about half the window (between the fitted size and 8 ×)
    const pz = view.panzoom;
    const box = g.getBBox();
    const local = view.svg.querySelector(".svg-pan-zoom_viewport").getCTM().inverse().multiply(g.getCTM());
    const a = new DOMPoint(box.x, box.y).matrixTransform(local);
    const b = new DOMPoint(box.x + box.width, box.y + box.height).matrixTransform(local);
    let s = pz.getSizes();
    const fitted = s.realZoom / pz.getZoom();
    const want = Math.min(s.width / Math.abs(b.x - a.x), s.height / Math.abs(b.y - a.y)) / 2 / fitted;
    pz.zoom(Math.max(1, Math.min(8, want)));
    s = pz.getSizes();
    pz.pan({ x: s.width / 2 - (a.x + b.x) / 2 * s.realZoom, y: s.height / 2 - (a.y + b.y) / 2 * s.realZoom });
  }

  // --- hover --------------------------------------------------------------------------------------------
  function hover(g, ev) {
    const tip = $("tip");
    let content = null;
    if (g && g.dataset.node !== undefined) content = nodeInfo(+g.dataset.node);
    else if (g && g.dataset.edge) content = edgeInfo(+g.dataset.edge);
    else if (g && g.dataset.leaf !== undefined) content = leafInfo(g.dataset.leaf);
    else if (g && g.dataset.block !== undefined) content = el("div", {}, "click to draw this layer's operations");
    if (!content) { tip.hidden = true; return; }
    tip.replaceChildren(content);
    tip.hidden = false;
    placeTip(ev);
  }

  function leafInfo(name) {
    const box = el("div", {}, el("div", { class: "head" }, name));
    const ids = data.leaves[name];
    box.append(nums(ids.map((i) => [data.nodes[i].label, data.nodes[i].value])));
    box.append(el("div", { class: "dim" }, "grad"));
    box.append(nums(ids.map((i) => [data.nodes[i].label, data.nodes[i].grad])));
    return box;
  }

  function placeTip(ev) {
    const tip = $("tip");
    if (tip.hidden) return;
    const w = tip.offsetWidth, h = tip.offsetHeight;
    let x = ev.clientX + 14, y = ev.clientY + 14;
    if (x + w > window.innerWidth - 4) x = Math.max(4, ev.clientX - w - 14);
    if (y + h > window.innerHeight - 4) y = Math.max(4, window.innerHeight - h - 4);
    tip.style.left = x + "px";
    tip.style.top = y + "px";
  }

  // --- click: a leaf's paths and the chain rule -------------------------------------------------------
  function clicked(g) {
    if (!g) return;
    if (g.dataset.node !== undefined) {
      const id = +g.dataset.node;
      pick(data.nodes[id].kind === "leaf" ? data.nodes[id].label : id);
    } else if (g.dataset.leaf !== undefined) {
      pick(g.dataset.leaf);
    } else if (g.dataset.block !== undefined && views.collapsed) {
      const other = view === views.collapsed ? "expanded" : "collapsed";
      const target = other === "expanded" ? views.expanded.clusters[g.dataset.block] : views.collapsed.blocks[g.dataset.block];
      show(other, target);
    }
  }

  // the edges on some path from the output down to the start nodes: what `--wrt` highlights
  function pathEdges(start) {
    const below = new Uint8Array(data.nodes.length), above = new Uint8Array(data.nodes.length);
    for (const i of start) below[i] = 1;
    for (const e of data.edges) if (below[e.src]) below[e.dst] = 1;  // nodes are in topological order
    for (const o of data.outputs) above[o] = 1;
    for (let i = E - 1; i >= 0; i--) if (above[data.edges[i].dst]) above[data.edges[i].src] = 1;
    const edges = new Set();
    data.edges.forEach((e, i) => { if (below[e.src] && above[e.src] && above[e.dst]) edges.add(i); });
    return edges;
  }

  // target: a leaf's name or one element's label (w, w[0]), or a node id
  function pick(target) {
    const leaf = typeof target === "string" && data.leaves[target] !== undefined;
    let start;
    if (leaf) start = data.leaves[target];
    else if (typeof target === "number") start = [target];
    else start = data.nodes.map((n, i) => (n.label === target ? i : -1)).filter((i) => i >= 0);
    if (!start.length) return false;
    picked = { start, edges: pathEdges(start), name: typeof target === "number" ? data.nodes[target].label : target };
    if (view !== views.expanded) show("expanded");
    restyle();
    writePanel();
    const g = views.expanded.nodes[data.nodes[start[0]].drawn];
    if (g && !inView(g)) zoomTo(g);
    return true;
  }

  function inView(g) {
    const r = g.getBoundingClientRect(), f = $("figure").getBoundingClientRect();
    return r.left >= f.left && r.right <= f.right && r.top >= f.top && r.bottom <= f.bottom;
  }

  function writePanel() {
    const body = $("panel-body");
    const name = picked.name;
    const ex = explanation(name);
    const parts = [el("h2", {}, `every path from the output down to ${name}`)];
    if (ex) {
      // one block per line of explain's text: a path wraps under itself, apart from the next path
      parts.push(el("div", { id: "chain-rule" }, ...ex.text.split("\n").filter((l) => l.trim())
        .map((l) => el("div", { class: l.startsWith("  path") ? "path" : "line" }, l.trim()))));
      const sum = ex.totals.length === 1 ? `∂output/∂${name} = ${num(ex.totals[0])}`
        : `∂output/∂${name} = [${ex.totals.map(num).join(", ")}]`;
      parts.push(el("div", { class: "sum", id: "sum" }, sum));
      parts.push(el("div", { class: "dim" }, `${ex.paths} path${ex.paths === 1 ? "" : "s"}, ${picked.edges.size} edges highlighted; the same text as gradviz explain --wrt ${name}`));
    } else {
      const first = data.nodes[picked.start[0]];
      const n = picked.start.length === 1 ? first : null;
      parts.push(el("div", { class: "dim" }, `${picked.edges.size} edges highlighted: the gradient of ${name} is the sum, over these paths, of the products of their local partials`));
      if (n) parts.push(nodeInfo(picked.start[0]));
      if (data.granularity === "tensor" && first.kind === "leaf") {
        parts.push(el("div", { class: "dim" }, `the chain rule written path by path needs one node per number: gradviz explain MODEL.py --wrt ${name}`));
      }
    }
    body.replaceChildren(...parts);
    setPanel(true);
  }

  // an array leaf's chain rule is that of each of its elements, as `gradviz explain --wrt w` prints them
  function explanation(name) {
    const ex = data.explain[name];
    if (!ex || !ex.elements) return ex;
    const parts = ex.elements.map((e) => data.explain[e]);
    return { text: parts.map((p) => p.text).join("\n"), totals: parts.map((p) => p.totals[0]),
             paths: parts.reduce((a, p) => a + p.paths, 0) };
  }

  function clearPick() {
    picked = null;
    setPanel(false);
    restyle();
  }

  function setPanel(open) {
    if ($("panel").hidden === !open) return;
    $("panel").hidden = !open;
    fit();  // the figure's width changed: draw it fitted to what is left
  }

  function fit() {
    view.panzoom.resize();
    view.panzoom.fit();
    view.panzoom.center();
  }

  // --- backprop step by step ----------------------------------------------------------------------------
  function setStep(k) {
    step = k === null ? null : Math.max(0, Math.min(data.steps.length - 1, k));
    if (step !== null && view !== views.expanded) show("expanded");
    restyle();
    if (step !== null && location.protocol !== "about:") history.replaceState(null, "", "#step=" + step);
  }

  // one pass over the expanded drawing: paths picked, and the state of backprop at the current step
  function restyle() {
    const v = views.expanded;
    const picking = picked !== null && view === v;
    v.div.classList.toggle("picking", picking);
    const on = new Set(), onEdges = new Set();
    if (picking) {
      for (const i of picked.edges) {
        const e = data.edges[i];
        on.add(data.nodes[e.src].drawn); on.add(data.nodes[e.dst].drawn);
        if (v.edges[i]) onEdges.add(v.edges[i]);
      }
      for (const i of picked.start) on.add(data.nodes[i].drawn);
      for (const i of data.outputs) if (picked.edges.size) on.add(data.nodes[i].drawn);
    }
    const starts = picking ? new Set(picked.start.map((i) => data.nodes[i].drawn)) : new Set();
    const done = new Set(), nowNode = new Set(), nowEdges = new Set();
    let visited = E;
    if (step !== null) {
      for (const s of data.steps.slice(0, step + 1)) done.add(data.nodes[s.node].drawn);
      const s = data.steps[step];
      nowNode.add(data.nodes[s.node].drawn);
      visited = s.visited;
      for (const i of s.edges) if (v.edges[i]) nowEdges.add(v.edges[i]);
    }
    for (const [id, g] of Object.entries(v.nodes)) {
      g.classList.toggle("on", on.has(+id));
      g.classList.toggle("start", starts.has(+id));
      const pending = step !== null && !done.has(+id) && data.nodes[id].kind !== "const";
      g.classList.toggle("pending", pending);
      g.classList.toggle("now", nowNode.has(+id));
      for (const t of g.querySelectorAll("text[data-full]")) t.textContent = pending ? "grad = —" : t.dataset.full;
    }
    for (const g of v.drawnEdges) {
      // backward visits the edges last to first: those before the first `visited` from the end carry no chain yet
      const pending = step !== null && +g.dataset.edge < E - visited;
      g.classList.toggle("on", onEdges.has(g));
      g.classList.toggle("pending", pending);
      g.classList.toggle("now", nowEdges.has(g));
      for (const t of g.querySelectorAll("text[data-full]")) t.textContent = pending ? "chain = —" : t.dataset.full;
    }
    const caption = $("caption");
    caption.hidden = step === null;
    $("step").value = step === null ? data.steps.length - 1 : step;
    $("counter").textContent = step === null ? `${data.steps.length} steps` : `step ${step} of ${data.steps.length - 1}`;
    $("prev").disabled = step === 0;
    $("next").disabled = step === data.steps.length - 1;
    if (step !== null) {
      caption.replaceChildren(el("b", {}, data.steps[step].caption), el("span", { class: "dim" },
        " · filled: gradient complete · empty: not yet · red: just completed, with the edges its gradient came from" +
        " · chain = —: edge not visited yet"));
    }
  }

  // --- search -------------------------------------------------------------------------------------------
  function find(text) {
    text = text.trim();
    if (!text) return false;
    if (data.leaves[text] !== undefined || data.nodes.some((n) => n.label === text)) return pick(text);
    const lower = text.toLowerCase();
    const leaf = Object.keys(data.leaves).find((k) => k.toLowerCase().includes(lower));
    if (leaf) return pick(leaf);
    const i = data.nodes.findIndex((n) => n.label.toLowerCase().includes(lower));
    return i >= 0 && pick(i);
  }

  // --- wiring -------------------------------------------------------------------------------------------
  for (const div of document.querySelectorAll(".drawing")) views[div.dataset.view] = prepare(div);
  const labels = new Set([...Object.keys(data.leaves), ...data.nodes.filter((n) => n.kind !== "const").map((n) => n.label)]);
  $("labels").replaceChildren(...[...labels].map((l) => el("option", { value: l })));
  $("search").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") {
      $("search").classList.toggle("missing", !find($("search").value));
    }
    ev.stopPropagation();  // typing a label is not a zoom or a step
  });
  $("search").addEventListener("change", () => find($("search").value));
  $("step").max = data.steps.length - 1;
  $("step").addEventListener("input", () => setStep(+$("step").value));
  $("prev").addEventListener("click", () => setStep(step === null ? data.steps.length - 1 : step - 1));
  $("next").addEventListener("click", () => setStep(step === null ? 0 : step + 1));
  $("fit").addEventListener("click", fit);
  $("close").addEventListener("click", clearPick);
  if (views.collapsed) {
    $("layers").hidden = false;
    $("layers").addEventListener("click", () => show(view === views.collapsed ? "expanded" : "collapsed"));
  }
  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const pz = view.panzoom;
    const keys = {
      "+": () => pz.zoomIn(), "=": () => pz.zoomIn(), "-": () => pz.zoomOut(), "−": () => pz.zoomOut(),
      "0": fit,
      ArrowRight: () => setStep(step === null ? 0 : step + 1),
      ArrowLeft: () => setStep(step === null ? data.steps.length - 1 : step - 1),
      Home: () => setStep(0), End: () => setStep(data.steps.length - 1),
      Escape: () => (picked ? clearPick() : setStep(null)),
    };
    if (keys[ev.key]) { ev.preventDefault(); keys[ev.key](); }
  });
  window.addEventListener("resize", () => { for (const v of Object.values(views)) if (v.panzoom) v.panzoom.resize(); });

  const start = data.start;
  show(start.view);
  const hash = /^#step=(\d+)$/.exec(location.hash);
  if (hash) setStep(+hash[1]);
  else if (start.step !== null) setStep(start.step);
  if (start.select) pick(start.select);
})();
