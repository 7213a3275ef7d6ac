// Unknown-field check ("kubectl --validate=strict", offline). The JSON schemas
// that kubernetes-models compiles into its validators allow any extra key, as
// Kubernetes' OpenAPI does, so a typo such as `readOnlyRootFileSystem` would
// pass them and be dropped by the API server. kubernetes-models also ships a
// TypeScript declaration per type, listing its fields; this walks an object
// along those declarations and reports every key they do not declare.
'use strict';
const fs = require('fs');
const path = require('path');

const modelsDir = path.dirname(require.resolve('kubernetes-models/package.json'));
const nodeModules = path.dirname(modelsDir);

const files = new Map(); // .d.ts path -> parsed declarations

function dtsFor(spec, fromDir) {
  const base = spec.startsWith('.') ? path.resolve(fromDir, spec) : path.join(nodeModules, spec);
  return base + '.d.ts';
}

// Splits "A; B" style member lists and reads one type expression, keeping
// track of nesting so that `{ [key: string]: string; }` stays whole.
function readType(src, i) {
  let depth = 0;
  const start = i;
  for (; i < src.length; i++) {
    const c = src[i];
    if (c === '<' || c === '{' || c === '(' || c === '[') depth++;
    else if (c === '>' || c === '}' || c === ')' || c === ']') depth--;
    else if (c === ';' && depth === 0) break;
  }
  return [src.slice(start, i).trim(), i + 1];
}

function parseFile(file) {
  if (files.has(file)) return files.get(file);
  const src = fs.readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');
  const dir = path.dirname(file);
  const imports = {};
  for (const m of src.matchAll(/import \{([^}]*)\} from "([^"]+)";/g))
    for (const name of m[1].split(',').map((s) => s.trim()).filter(Boolean))
      imports[name.split(/\s+as\s+/).pop()] = dtsFor(m[2], dir);
  const aliases = {};
  for (const m of src.matchAll(/export \{([^}]*)\};/g))
    for (const part of m[1].split(',')) {
      const [from, to] = part.trim().split(/\s+as\s+/);
      if (to) aliases[to] = from;
    }
  const interfaces = {};
  for (const m of src.matchAll(/export interface (\w+)(?: extends ([\w, ]+))? \{/g)) {
    const fields = {};
    let i = m.index + m[0].length;
    for (;;) {
      const rest = src.slice(i);
      const f = rest.match(/^\s*"([^"]+)"\??:\s*/);
      if (!f) break;
      const [type, next] = readType(src, i + f[0].length);
      fields[f[1]] = type;
      i = next;
    }
    if (m[2] && m[2].split(',').map((s) => s.trim()).includes('TypeMeta')) {
      fields.apiVersion = 'string';
      fields.kind = 'string';
    }
    interfaces[m[1]] = fields;
  }
  const parsed = { file, dir, imports, aliases, interfaces };
  files.set(file, parsed);
  return parsed;
}

// A type expression -> {kind: 'leaf'} | {kind: 'array', of} | {kind: 'map', of}
// | {kind: 'object', fields, file}.
function resolveType(type, ctx) {
  type = type.trim();
  let m;
  if ((m = type.match(/^Array<([\s\S]*)>$/))) return { kind: 'array', of: resolveType(m[1], ctx) };
  if ((m = type.match(/^\{\s*\[key: string\]:\s*([\s\S]*?);?\s*\}$/))) return { kind: 'map', of: resolveType(m[1], ctx) };
  if (!/^I\w+$/.test(type)) return { kind: 'leaf' }; // string, number, boolean, literal unions, any
  let file = ctx;
  let name = type;
  if (ctx.imports[type]) {
    file = parseFile(ctx.imports[type]);
    name = file.aliases[type] || type;
  } else if (ctx.aliases[type]) {
    name = ctx.aliases[type];
  }
  const fields = file.interfaces[name];
  if (!fields) return { kind: 'leaf' }; // a type alias such as IQuantity or ITime
  return { kind: 'object', fields, file };
}

function modelDts(apiVersion, kind) {
  const file = path.join(modelsDir, apiVersion, kind + '.d.ts'); // v1/Pod, apps/v1/DaemonSet
  return fs.existsSync(file) ? file : null;
}

// Returns a list of "path: unknown field" strings (empty when all are known).
function unknownFields(obj) {
  const file = obj && obj.apiVersion && obj.kind && modelDts(obj.apiVersion, obj.kind);
  if (!file) return [`${obj && obj.kind}: no declaration for ${obj && obj.apiVersion}/${obj && obj.kind}`];
  const ctx = parseFile(file);
  const root = { kind: 'object', fields: ctx.interfaces['I' + obj.kind], file: ctx };
  if (!root.fields) return [`${obj.kind}: interface I${obj.kind} not found in ${file}`];
  const problems = [];
  const walk = (value, t, where) => {
    if (value === null || value === undefined || t.kind === 'leaf') return;
    if (t.kind === 'array') {
      if (Array.isArray(value)) value.forEach((v, i) => walk(v, t.of, `${where}[${i}]`));
      return;
    }
    if (typeof value !== 'object' || Array.isArray(value)) return; // type errors are the schema's job
    if (t.kind === 'map') {
      for (const [k, v] of Object.entries(value)) walk(v, t.of, `${where}[${JSON.stringify(k)}]`);
      return;
    }
    for (const [k, v] of Object.entries(value)) {
      const sub = where ? `${where}.${k}` : k;
      if (!(k in t.fields)) problems.push(`${sub}: unknown field`);
      else walk(v, resolveType(t.fields[k], t.file), sub);
    }
  };
  walk(obj, root, '');
  return problems;
}

module.exports = { unknownFields };
