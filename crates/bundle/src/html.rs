//! A self-contained, offline HTML report: a zoomable treemap (chunk, then package, then
//! module) with raw and compressed sizes, search, and the findings.
//!
//! The data is embedded as one compact JSON document; the page lays out a squarified
//! treemap of the zoomed node only, drawing at most a few thousand rectangles (those large
//! enough to see), so 16,000 modules load at once.

use crate::findings::cost;
use crate::model::Analysis;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// One treemap node: `[name, raw, gzip, children]` in the embedded JSON.
fn node(name: &str, raw: u64, gzip: Option<u64>, children: Vec<Value>) -> Value {
    if children.is_empty() {
        json!([name, raw, gzip.unwrap_or(0)])
    } else {
        json!([name, raw, gzip.unwrap_or(0), children])
    }
}

/// The treemap tree of an analysis: chunks, then packages (or `(app)`), then modules.
/// Each module's output is split evenly over the chunks holding it; the part of a chunk's
/// files not attributed to modules shows as `(unattributed)`.
pub fn tree(a: &Analysis) -> Value {
    // chunk id -> package -> [(module, raw, gzip)]
    type Leaves = Vec<(String, u64, u64)>;
    let mut by_chunk: BTreeMap<&str, BTreeMap<String, Leaves>> = BTreeMap::new();
    for m in &a.modules {
        let n = (m.chunks.len() as u64).max(1);
        let raw = cost(m) / n;
        let gz = m.gzip.unwrap_or(0) / n;
        if raw == 0 {
            continue;
        }
        for c in &m.chunks {
            let pkg = m.package.clone().unwrap_or_else(|| "(app)".into());
            by_chunk
                .entry(c.as_str())
                .or_default()
                .entry(pkg)
                .or_default()
                .push((m.name.clone(), raw, gz));
        }
    }
    let mut chunks = Vec::new();
    for c in &a.chunks {
        let mut pkgs = Vec::new();
        let mut sum = 0u64;
        let mut sum_gz = 0u64;
        if let Some(p) = by_chunk.remove(c.id.as_str()) {
            for (pkg, mut mods) in p {
                mods.sort_by_key(|m| std::cmp::Reverse(m.1));
                let raw: u64 = mods.iter().map(|m| m.1).sum();
                let gz: u64 = mods.iter().map(|m| m.2).sum();
                sum += raw;
                sum_gz += gz;
                let leaves = mods
                    .into_iter()
                    .map(|(n, r, g)| node(&n, r, Some(g), Vec::new()))
                    .collect();
                pkgs.push((raw, node(&pkg, raw, Some(gz), leaves)));
            }
        }
        let known_out = a.modules.iter().any(|m| m.output_size.is_some());
        if known_out && c.raw > sum {
            let rest_gz = c.gzip.map(|g| g.saturating_sub(sum_gz));
            pkgs.push((
                c.raw - sum,
                node("(unattributed)", c.raw - sum, rest_gz, Vec::new()),
            ));
        }
        pkgs.sort_by_key(|p| std::cmp::Reverse(p.0));
        let total = if known_out { c.raw.max(sum) } else { sum };
        let label = match c.names.first() {
            Some(n) => format!("{n} [{}]{}", c.id, if c.initial { "" } else { " async" }),
            None => format!("chunk {}{}", c.id, if c.initial { "" } else { " async" }),
        };
        if total > 0 {
            chunks.push(node(
                &label,
                total,
                c.gzip,
                pkgs.into_iter().map(|p| p.1).collect(),
            ));
        }
    }
    let total: u64 = chunks.iter().map(|c| c[1].as_u64().unwrap_or(0)).sum();
    let total_gz: u64 = chunks.iter().map(|c| c[2].as_u64().unwrap_or(0)).sum();
    node("bundle", total, Some(total_gz), chunks)
}

/// Renders the report.
pub fn render(a: &Analysis) -> String {
    let findings: Vec<Value> = a
        .findings
        .iter()
        .take(50)
        .map(|f| json!([f.severity.as_str(), f.kind, f.bytes, f.message]))
        .collect();
    let data = json!({ "tree": tree(a), "findings": findings, "format": a.format });
    // Inside <script>, "</" must not appear; "<\/" is the same JSON string.
    let data = data.to_string().replace("</", "<\\/");
    let mut out = String::with_capacity(data.len() + PAGE.len() + 64);
    out.push_str(PAGE_HEAD);
    out.push_str("<script id=\"data\" type=\"application/json\">");
    out.push_str(&data);
    out.push_str("</script>\n");
    out.push_str(PAGE);
    out
}

const PAGE_HEAD: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>perfkit bundle report</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{margin:0;font:13px system-ui,sans-serif;background:#fafafa;color:#222}
header{display:flex;gap:12px;align-items:center;padding:6px 10px;background:#223;color:#eee}
header input{padding:3px 6px;width:260px}
#crumbs a{color:#9cf;cursor:pointer;margin-right:4px}
#map{position:relative;height:calc(100vh - 180px);min-height:300px;margin:6px;overflow:hidden;background:#fff}
.node{position:absolute;box-sizing:border-box;border:1px solid rgba(0,0,0,.25);overflow:hidden;font-size:11px;line-height:13px;padding:1px 2px;cursor:pointer;white-space:nowrap;text-overflow:ellipsis}
.node.hit{outline:2px solid #e00;z-index:2}
#results{max-height:90px;overflow:auto;margin:0 6px;font-size:12px}#results a.result{display:inline-block;margin-right:12px;color:#036;cursor:pointer}
#findings{height:110px;overflow:auto;margin:0 6px;font-size:12px}
#findings .critical{color:#b00}#findings .warning{color:#a60}
</style></head><body>
<header><b>perfkit bundle</b><span id="crumbs"></span>
<select id="metric" title="what the areas show"><option value="1">raw size</option><option value="2">gzip size</option></select>
<input id="search" placeholder="search modules and packages" autocomplete="off"><span id="hits"></span>
<span id="info"></span></header>
<div id="results"></div><div id="map"></div><div id="findings"></div>
"#;

const PAGE: &str = r#"<script>
"use strict";
const DATA = JSON.parse(document.getElementById('data').textContent);
const map = document.getElementById('map'), info = document.getElementById('info');
const MAX_NODES = 6000;
let root = DATA.tree, path = [DATA.tree], query = '';
// Which size the areas show: 1 = raw bytes, 2 = gzip bytes (each module's share of its
// chunk's real gzip size).
let SZ = 1;
document.getElementById('metric').addEventListener('change', (e)=>{ SZ = Number(e.target.value); render(); });
function kb(n){return n<1024?n+' B':n<1048576?(n/1024).toFixed(1)+' KiB':(n/1048576).toFixed(2)+' MiB'}
function kids(n){return n[3]||[]}
// Squarified treemap (Bruijn, Huizing, van Wijk): lays the items out, largest first, in
// rows along the shorter side, keeping the rectangles' aspect ratios close to 1.
function squarify(items, x, y, w, h, out){
  items = items.filter(it => it[SZ] > 0).sort((a, b) => b[SZ] - a[SZ]);
  let total = 0; for (const it of items) total += it[SZ];
  if (total <= 0 || w <= 0 || h <= 0) return;
  const scale = (w*h)/total; let i = 0;
  while (i < items.length) {
    const side = Math.min(w, h); let row = [], rowSum = 0, best = Infinity;
    while (i < items.length) {
      const a = items[i][SZ]*scale, s = rowSum + a, mx = row.length ? row[0][SZ]*scale : a;
      const worst = Math.max(side*side*mx/(s*s), (s*s)/(side*side*a));
      if (row.length && worst > best) break;
      row.push(items[i]); rowSum = s; best = worst; i++;
    }
    const thick = rowSum/side; let off = 0;
    for (const it of row) {
      const len = it[SZ]*scale/thick;
      if (w >= h) out.push([it, x, y+off, thick, len]); else out.push([it, x+off, y, len, thick]);
      off += len;
    }
    if (w >= h) { x += thick; w -= thick; } else { y += thick; h -= thick; }
  }
}
function color(depth, name){let h=0;for(let i=0;i<name.length;i++)h=(h*31+name.charCodeAt(i))>>>0;return 'hsl('+(h%360)+','+(55-depth*8)+'%,'+(72+depth*6)+'%)'}
function render(){
  map.textContent=''; const frag=document.createDocumentFragment(); let count=0, hits=0;
  const q=query.toLowerCase();
  // Breadth first, so that when the rectangle budget runs out it is the deepest level
  // (the smallest modules) that is left out, never a whole chunk.
  const queue=[]; let head=0;
  const top=[]; squarify(kids(root).length?kids(root):[root], 0, 0, map.clientWidth, map.clientHeight, top);
  for (const t of top) queue.push([t[0],t[1],t[2],t[3],t[4],0]);
  while (head < queue.length && count < MAX_NODES) {
    const [n,x,y,w,h,depth]=queue[head++];
    if (w < 2 || h < 2) continue;
    const d=document.createElement('div'); d.className='node'; count++;
    d.style.left=x+'px'; d.style.top=y+'px'; d.style.width=w+'px'; d.style.height=h+'px';
    d.style.background=color(depth, n[0]);
    d.title=n[0]+'\nraw '+kb(n[1])+'\ngzip '+kb(n[2]);
    if (w > 40 && h > 12) d.textContent=n[0].replace(/^.*node_modules\//,'')+' '+kb(n[SZ]);
    if (q && n[0].toLowerCase().includes(q)) { d.classList.add('hit'); hits++; }
    d.onclick=(e)=>{e.stopPropagation(); if (kids(n).length){ path.push(n); root=n; render(); }};
    frag.appendChild(d);
    const c=kids(n); const pad=(w>30&&h>30)?14:0;
    if (c.length && depth < 3 && w > 8 && h > 8+pad) {
      const out=[]; squarify(c, x+2, y+pad, w-4, h-pad-2, out);
      for (const [cn,cx,cy,cw,ch] of out) queue.push([cn,cx,cy,cw,ch,depth+1]);
    }
  }
  map.appendChild(frag);
  document.getElementById('hits').textContent = q ? hits+' visible match(es)' : '';
  info.textContent = root[0]+': raw '+kb(root[1])+', gzip '+kb(root[2])+' ('+count+' rectangles)';
  const cr=document.getElementById('crumbs'); cr.textContent='';
  path.forEach((p,i)=>{const a=document.createElement('a');a.textContent=p[0]+' /';a.onclick=()=>{path=path.slice(0,i+1);root=p;render()};cr.appendChild(a)});
  map.dataset.rendered = String(count);
}
// Search walks the whole tree (not only what is drawn): the matches are listed with their
// sizes, and clicking one zooms to the node that holds it.
const results=document.getElementById('results');
function search(){
  results.textContent=''; if(!query){render();return;}
  const q=query.toLowerCase(), found=[];
  (function walk(n, trail){ for(const c of kids(n)){ const t=trail.concat([c]); if(c[0].toLowerCase().includes(q)) found.push(t); walk(c, t); } })(DATA.tree, [DATA.tree]);
  found.sort((a,b)=>b[b.length-1][1]-a[a.length-1][1]);
  let total=0; for(const t of found) total+=t[t.length-1][1];
  const head=document.createElement('div'); head.textContent=found.length+' match(es), '+kb(total)+' raw'; results.appendChild(head);
  for(const t of found.slice(0,30)){ const n=t[t.length-1], a=document.createElement('a');
    a.textContent=n[0]+' ('+kb(n[1])+', gzip '+kb(n[2])+')'; a.className='result';
    a.onclick=()=>{ path=t.length>1?t.slice(0,-1):t; root=path[path.length-1]; render(); }; results.appendChild(a); }
  render();
}
document.getElementById('search').addEventListener('input', (e)=>{ query=e.target.value.trim(); search(); });
map.onclick=()=>{ if (path.length>1){ path.pop(); root=path[path.length-1]; render(); } };
window.addEventListener('resize', render);
const f=document.getElementById('findings');
for (const [sev,kind,bytes,msg] of DATA.findings){const p=document.createElement('div');p.className=sev;p.textContent='['+sev+'] '+kind+' ('+kb(bytes)+'): '+msg;f.appendChild(p)}
// `report.html#search=lodash` opens with a search (links from CI logs, tests).
const h=decodeURIComponent(location.hash||'');
if (h.startsWith('#search=')) { query=h.slice(8); document.getElementById('search').value=query; search(); } else render();
</script></body></html>
"#;
