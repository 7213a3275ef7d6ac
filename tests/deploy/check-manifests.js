#!/usr/bin/env node
// Checks the objects of deploy/: each rendered kustomization (kubectl
// kustomize output, given as --render NAME=FILE) and the example pods in
// deploy/examples/. Prints one line per check; exits 1 if any failed.
//
//   node check-manifests.js --root REPO [--render NAME=FILE]... [--cli PATH]
//
// --cli names the kubeaccel binary; each rendered config.json is then checked
// by the real config validator (`kubeaccel devices --config FILE --json`).
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const YAML = require('yaml');
const { unknownFields } = require('./strict-fields.js');

// ---- arguments ----
const args = { renders: [], root: null, cli: null };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '--root') args.root = process.argv[++i];
  else if (a === '--cli') args.cli = process.argv[++i];
  else if (a === '--render') {
    const [name, file] = process.argv[++i].split('=');
    args.renders.push({ name, file });
  } else {
    console.error(`check-manifests: unknown argument ${a}`);
    process.exit(2);
  }
}
if (!args.root) {
  console.error('check-manifests: --root REPO is required');
  process.exit(2);
}

// ---- reporting ----
let passed = 0;
let failed = 0;
function check(ok, what, why) {
  if (ok) {
    passed++;
    console.log(`ok   ${what}`);
  } else {
    failed++;
    console.log(`FAIL ${what}${why ? `: ${why}` : ''}`);
  }
  return ok;
}
const note = (s) => console.log(`note ${s}`);

// ---- helpers ----
const POD_BEARING = new Set(['Pod', 'PodTemplate', 'ReplicationController', 'ReplicaSet', 'Deployment', 'StatefulSet', 'DaemonSet', 'Job', 'CronJob']);
const NAMESPACED_EXCEPTIONS = new Set(['Namespace']);

function podSpecOf(obj) {
  switch (obj.kind) {
    case 'Pod':
      return obj.spec;
    case 'PodTemplate':
      return obj.template && obj.template.spec;
    case 'CronJob':
      return obj.spec && obj.spec.jobTemplate && obj.spec.jobTemplate.spec.template.spec;
    default:
      return obj.spec && obj.spec.template && obj.spec.template.spec;
  }
}
const allContainers = (spec) => [...(spec.initContainers || []), ...(spec.containers || []), ...(spec.ephemeralContainers || [])];
const id = (obj) => `${obj.kind}/${obj.metadata && obj.metadata.name}`;

function effective(spec, c, key) {
  const sc = c.securityContext || {};
  if (sc[key] !== undefined) return sc[key];
  return (spec.securityContext || {})[key];
}

// Kubernetes quantities, enough for cpu and memory: "100m", "2", "64Mi", "1Gi".
function quantity(q) {
  const m = String(q).match(/^([0-9.]+)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/);
  if (!m) return NaN;
  const mult = { m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4 };
  return parseFloat(m[1]) * (m[2] ? mult[m[2]] : 1);
}

// "--flag=value" and "--flag value" forms.
function flags(c) {
  const words = [...(c.command || []), ...(c.args || [])];
  const out = {};
  for (let i = 0; i < words.length; i++) {
    const m = words[i].match(/^--([a-z-]+)(?:=(.*))?$/);
    if (!m) continue;
    if (m[2] !== undefined) out[m[1]] = m[2];
    else if (i + 1 < words.length && !words[i + 1].startsWith('--')) out[m[1]] = words[++i];
    else out[m[1]] = true;
  }
  return out;
}

function modelClass(obj) {
  const mod = `kubernetes-models/${obj.apiVersion}`;
  try {
    return require(mod)[obj.kind] || null;
  } catch (e) {
    return null;
  }
}

function loadYaml(file, what) {
  const docs = YAML.parseAllDocuments(fs.readFileSync(file, 'utf8'));
  const objs = [];
  let ok = true;
  for (const d of docs) {
    if (d.errors.length) {
      ok = false;
      check(false, `${what}: YAML parses`, d.errors.map((e) => e.message).join('; '));
    }
    const o = d.toJS();
    if (o) objs.push(o);
  }
  if (ok) check(objs.length > 0, `${what}: YAML parses (${objs.length} object(s))`, 'no objects');
  return objs;
}

// ---- rules for every object ----
function checkCommon(obj, where, hostNetworkAllowed) {
  const w = `${where} ${id(obj)}`;
  const Model = modelClass(obj);
  if (check(Model !== null, `${w}: kind known to the Kubernetes schemas`, `no schema for ${obj.apiVersion} ${obj.kind}`)) {
    let err = null;
    try {
      new Model(obj).validate();
    } catch (e) {
      err = e.message;
    }
    check(err === null, `${w}: valid against the Kubernetes schema`, err);
    const unknown = unknownFields(obj);
    check(unknown.length === 0, `${w}: no unknown fields`, unknown.join('; '));
  }
  if (!POD_BEARING.has(obj.kind)) return;
  const spec = podSpecOf(obj);
  if (!check(!!spec, `${w}: has a pod spec`)) return;
  if (hostNetworkAllowed) check(true, `${w}: hostNetwork ${spec.hostNetwork ? 'true: allowed here only (udev netlink events)' : 'not set'}`);
  else check(!spec.hostNetwork, `${w}: hostNetwork not set`, 'hostNetwork: true');
  check(!spec.hostPID && !spec.hostIPC, `${w}: hostPID and hostIPC not set`);
  for (const c of allContainers(spec)) {
    const sc = c.securityContext || {};
    const cw = `${w} container ${c.name}`;
    check(sc.privileged !== true, `${cw}: not privileged`);
    check(sc.allowPrivilegeEscalation === false, `${cw}: allowPrivilegeEscalation false`, `got ${sc.allowPrivilegeEscalation}`);
    const caps = sc.capabilities || {};
    check((caps.drop || []).includes('ALL') && !(caps.add || []).length, `${cw}: drops ALL capabilities, adds none`, JSON.stringify(caps));
    check(sc.readOnlyRootFilesystem === true, `${cw}: readOnlyRootFilesystem`);
    const seccomp = effective(spec, c, 'seccompProfile');
    check(seccomp && seccomp.type === 'RuntimeDefault', `${cw}: seccompProfile RuntimeDefault`, JSON.stringify(seccomp));
    const lim = (c.resources || {}).limits || {};
    check(lim.cpu !== undefined && lim.memory !== undefined, `${cw}: cpu and memory limits`, JSON.stringify(lim));
  }
}

// ---- the DaemonSet of a rendered kustomization ----
const PROBES = {
  plugin: ['kubeaccel-plugin', '--probe', '--agent-dir', '/var/lib/kubeaccel/agent'],
  agent: ['kubeaccel-agent', '--probe', '--agent-dir', '/var/lib/kubeaccel/agent'],
};
// hostPath mounts each daemon needs (path -> read-only?), and no more.
const HOST_MOUNTS = {
  plugin: {
    '/var/lib/kubelet/device-plugins': false,
    '/sys': true,
    '/run/udev': true,
    '/var/lib/kubeaccel/agent': true,
    '/var/run/cdi': false,
  },
  agent: {
    '/var/lib/kubeaccel/agent': false,
    '/sys': true,
    '/run/udev': true,
    '/dev/bus/usb': true,
  },
};
const OPTIONAL_HOST_MOUNTS = { agent: { '/var/lib/kubeaccel/models': true } };

function checkDaemonSet(ds, where, configMaps) {
  const w = `${where} ${id(ds)}`;
  const spec = podSpecOf(ds);
  check(spec.priorityClassName === 'system-node-critical', `${w}: priorityClassName system-node-critical`, `got ${spec.priorityClassName}`);
  const tol = spec.tolerations || [];
  const tolerates = (effect) => tol.some((t) => t.operator === 'Exists' && !t.key && (t.effect === effect || !t.effect));
  check(tolerates('NoSchedule') && tolerates('NoExecute'), `${w}: tolerates every NoSchedule and NoExecute taint`, JSON.stringify(tol));
  const us = ds.spec.updateStrategy || {};
  const ru = us.rollingUpdate || {};
  check(us.type === 'RollingUpdate' && ru.maxUnavailable !== undefined, `${w}: RollingUpdate with maxUnavailable`, JSON.stringify(us));
  check(!ru.maxSurge || ru.maxSurge === 0 || ru.maxSurge === '0%', `${w}: maxSurge 0 (never two plugins on a node)`, `maxSurge ${ru.maxSurge}`);
  check(spec.automountServiceAccountToken === false, `${w}: no service account token`);

  const byName = Object.fromEntries((spec.containers || []).map((c) => [c.name, c]));
  const volumes = Object.fromEntries((spec.volumes || []).map((v) => [v.name, v]));
  const f = {};
  for (const name of ['plugin', 'agent']) {
    const c = byName[name];
    const cw = `${w} container ${name}`;
    if (!check(!!c, `${cw}: present`)) continue;
    const sc = c.securityContext || {};
    check(sc.privileged !== true && (sc.capabilities || {}).drop && sc.capabilities.drop.includes('ALL'),
      `${cw}: not privileged, drops ALL capabilities`);
    if (name === 'plugin') check(effective(spec, c, 'runAsUser') === 0, `${cw}: runAsUser 0 (writes into the kubelet's root-owned directory)`);
    for (const kind of ['livenessProbe', 'readinessProbe']) {
      const p = c[kind];
      const cmd = p && p.exec && p.exec.command;
      check(JSON.stringify(cmd) === JSON.stringify(PROBES[name]), `${cw}: ${kind} exec ${PROBES[name].join(' ')}`, `got ${JSON.stringify(p)}`);
    }
    const res = c.resources || {};
    const req = res.requests || {};
    const lim = res.limits || {};
    const both = ['cpu', 'memory'].every((r) => req[r] !== undefined && lim[r] !== undefined);
    check(both && ['cpu', 'memory'].every((r) => quantity(req[r]) <= quantity(lim[r])),
      `${cw}: cpu and memory requests and limits, requests <= limits`, JSON.stringify(res));

    // hostPath mounts: the expected set, read-only where it should be, and
    // the same path inside as on the node (Allocate and CDI use host paths).
    const seen = {};
    for (const m of c.volumeMounts || []) {
      const v = volumes[m.name];
      if (!v || !v.hostPath) continue;
      seen[v.hostPath.path] = !!m.readOnly;
      check(m.mountPath === v.hostPath.path, `${cw}: hostPath ${v.hostPath.path} mounted at the same path`, `mountPath ${m.mountPath}`);
    }
    const want = HOST_MOUNTS[name];
    const optional = OPTIONAL_HOST_MOUNTS[name] || {};
    for (const [p, ro] of Object.entries(want))
      check(p in seen && seen[p] === ro, `${cw}: hostPath ${p} ${ro ? 'read-only' : 'read-write'}`,
        p in seen ? `readOnly ${seen[p]}` : 'not mounted');
    for (const p of Object.keys(seen))
      if (!(p in want)) check(p in optional && seen[p] === optional[p], `${cw}: hostPath ${p} is one it needs`, 'not in the expected set');
    f[name] = flags(c);

    // --metrics-address on a declared containerPort.
    const addr = f[name]['metrics-address'];
    const port = addr && Number(String(addr).split(':').pop());
    check(!!addr && (c.ports || []).some((p) => p.containerPort === port), `${cw}: --metrics-address ${addr} on a containerPort`, JSON.stringify(c.ports));
    // --config in a mounted ConfigMap of this kustomization.
    const cfg = f[name].config;
    const cfgMount = (c.volumeMounts || []).find((m) => cfg && cfg.startsWith(m.mountPath + '/'));
    const cfgVol = cfgMount && volumes[cfgMount.name];
    check(!!(cfgVol && cfgVol.configMap && configMaps[cfgVol.configMap.name] && configMaps[cfgVol.configMap.name].data[path.basename(cfg)]),
      `${cw}: --config ${cfg} comes from the ConfigMap in this kustomization`);
  }
  for (const c of spec.initContainers || []) {
    const hp = (c.volumeMounts || []).filter((m) => volumes[m.name] && volumes[m.name].hostPath);
    check(hp.length === 0, `${w} init container ${c.name}: no hostPath`, hp.map((m) => m.mountPath).join(', '));
  }
  if (f.plugin && f.agent) {
    const p = f.plugin;
    check(p.config === '/etc/kubeaccel/config.json' && p['kubelet-dir'] === '/var/lib/kubelet' &&
      p['agent-dir'] === '/var/lib/kubeaccel/agent' && p['cdi-dir'] === '/var/run/cdi',
      `${w}: plugin flags --config --kubelet-dir --agent-dir --cdi-dir`, JSON.stringify(p));
    const a = f.agent;
    const models = (byName.agent.volumeMounts || []).find((m) => m.name === 'models');
    check(a.config === p.config && a['agent-dir'] === p['agent-dir'] && models && a.models === models.mountPath,
      `${w}: agent flags --config and --agent-dir as the plugin's, --models on the models volume`, JSON.stringify(a));
  }
  return spec;
}

function checkConfig(cm, where, cli) {
  const w = `${where} ${id(cm)}`;
  const text = cm.data && cm.data['config.json'];
  if (!check(typeof text === 'string', `${w}: holds config.json`)) return null;
  let doc = null;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    check(false, `${w}: config.json is JSON`, e.message);
    return null;
  }
  check(true, `${w}: config.json is JSON`);
  if (cli) {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kubeaccel-deploy-'));
    const file = path.join(tmp, 'config.json');
    fs.writeFileSync(file, text);
    const r = spawnSync(cli, ['devices', '--config', file, '--json'], { encoding: 'utf8', timeout: 20000 });
    fs.rmSync(tmp, { recursive: true, force: true });
    let json = false;
    try {
      json = Array.isArray(JSON.parse(r.stdout).devices);
    } catch (e) {
      json = false;
    }
    check(r.status === 0 && json, `${w}: config.json accepted by the config validator (kubeaccel devices --config)`,
      `exit ${r.status}: ${(r.stderr || '').trim()}`);
  }
  return doc;
}

const classOf = (doc, name) => ((doc && doc.classes) || []).find((c) => c.name === name);
const STICKS = ['movidius-ncs', 'movidius-ncs2', 'coral-usb'];

// ---- main ----
let cli = args.cli;
if (cli && !fs.existsSync(cli)) {
  note(`kubeaccel CLI not built (${cli}): config.json is checked as JSON only`);
  cli = null;
}

const rendered = {};
for (const r of args.renders) {
  const where = `[${r.name}]`;
  const objs = loadYaml(r.file, `${where} kubectl kustomize output`);
  const configMaps = {};
  let ds = null;
  let catalog = null;
  for (const o of objs) {
    checkCommon(o, where, o.kind === 'DaemonSet' && o.metadata.name === 'kubeaccel');
    if (!NAMESPACED_EXCEPTIONS.has(o.kind))
      check(o.metadata.namespace === 'kubeaccel', `${where} ${id(o)}: in namespace kubeaccel`, `namespace ${o.metadata.namespace}`);
    if (o.kind === 'ConfigMap') {
      configMaps[o.metadata.name] = o;
      catalog = checkConfig(o, where, cli);
    }
    if (o.kind === 'DaemonSet' && o.metadata.name === 'kubeaccel') ds = o;
  }
  const kinds = objs.map(id).sort();
  check(objs.some((o) => o.kind === 'Namespace' && o.metadata.name === 'kubeaccel'), `${where}: has Namespace kubeaccel`, kinds.join(', '));
  check(objs.filter((o) => POD_BEARING.has(o.kind)).length === 1 && !!ds,
    `${where}: the only pod-bearing object is DaemonSet kubeaccel (examples are not in the base)`, kinds.join(', '));
  const spec = ds && checkDaemonSet(ds, where, configMaps);
  rendered[r.name] = { ds, spec, catalog };
  if (!spec) continue;
  const aff = spec.affinity && spec.affinity.nodeAffinity;
  if (r.name === 'production') {
    const terms = aff && aff.requiredDuringSchedulingIgnoredDuringExecution && aff.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms;
    const keys = (terms || []).flatMap((t) => (t.matchExpressions || []).map((e) => e.key));
    check(keys.length > 0 && keys.every((k) => /^feature\.node\.kubernetes\.io\/(usb|pci)-[0-9a-f]+(_[0-9a-f]+)+\.present$/.test(k)),
      `${where}: node affinity on Node Feature Discovery labels (feature.node.kubernetes.io/{usb,pci}-...present)`, keys.join(', '));
    for (const id2 of ['03e7_2485', '03e7_f63b'])
      check(keys.some((k) => k.includes(id2)), `${where}: an NCS2 node matches before and after re-enumeration (${id2})`);
    check((spec.initContainers || []).length === 0, `${where}: no models init container (models from the node)`);
  } else {
    check(!aff && !spec.nodeSelector, `${where}: no nodeSelector or node affinity (every node)`,
      JSON.stringify({ nodeSelector: spec.nodeSelector, affinity: spec.affinity }));
  }
  if (r.name === 'cpu-trial') {
    for (const s of STICKS) {
      const c = classOf(catalog, s);
      check(!!c && c.mode === 'agent' && c.backend === 'opencv-cpu' && c.reenumerates === true,
        `${where}: class ${s} in agent mode on backend opencv-cpu, still reenumerates`, JSON.stringify(c));
    }
  }
  if (r.name === 'gpu-shared') {
    const c = classOf(catalog, 'nvidia-gpu');
    check(!!c && c.mode === 'agent' && c.backend === 'torch' && c.slots > 1,
      `${where}: class nvidia-gpu in agent mode on backend torch, several slots`, JSON.stringify(c));
    const env = (name) => ((spec.containers.find((x) => x.name === name) || {}).env || []);
    const visible = env('agent').some((e) => e.name === 'NVIDIA_VISIBLE_DEVICES' && e.value === 'all');
    const cdi = Object.entries((ds.spec.template.metadata || {}).annotations || {})
      .some(([k, v]) => k.startsWith('cdi.k8s.io/') && v === 'nvidia.com/gpu=all');
    check((spec.runtimeClassName === 'nvidia' && visible) || cdi,
      `${where}: the agent gets the node's GPUs (runtime class nvidia + NVIDIA_VISIBLE_DEVICES=all, or CDI nvidia.com/gpu=all)`);
    check(!env('plugin').some((e) => e.name.startsWith('NVIDIA_')), `${where}: the plugin container asks for no GPU`);
  }
}
if (args.renders.length)
  for (const n of ['default', 'cpu-trial', 'production', 'gpu-shared'])
    check(n in rendered, `[${n}] rendered and checked (deploy/${n === 'default' ? '' : `overlays/${n}/`})`);
if (rendered.production && rendered.default && rendered.production.spec && rendered.default.spec) {
  const limits = (spec, name) => ((spec.containers.find((c) => c.name === name) || {}).resources || {}).limits || {};
  for (const name of ['plugin', 'agent']) {
    const p = limits(rendered.production.spec, name);
    const d = limits(rendered.default.spec, name);
    check(['cpu', 'memory'].every((r) => quantity(p[r]) <= quantity(d[r])) && ['cpu', 'memory'].some((r) => quantity(p[r]) < quantity(d[r])),
      `[production] container ${name}: tighter limits than the base`, `production ${JSON.stringify(p)}, base ${JSON.stringify(d)}`);
  }
}

// ---- the examples ----
const exDir = path.join(args.root, 'deploy', 'examples');
const exFiles = fs.readdirSync(exDir).filter((f) => /\.ya?ml$/.test(f)).sort();
check(exFiles.length >= 2, `[examples] deploy/examples has example manifests (${exFiles.join(', ')})`);
let baseCatalog = rendered.default && rendered.default.catalog;
if (!baseCatalog) {
  try {
    baseCatalog = JSON.parse(fs.readFileSync(path.join(args.root, 'deploy', 'base', 'config.json'), 'utf8'));
  } catch (e) {
    check(false, '[examples] deploy/base/config.json is JSON', e.message);
  }
}
for (const file of exFiles) {
  const where = `[examples/${file}]`;
  for (const o of loadYaml(path.join(exDir, file), where)) {
    checkCommon(o, where, false);
    if (!POD_BEARING.has(o.kind)) continue;
    const spec = podSpecOf(o);
    if (!spec) continue;
    const w = `${where} ${id(o)}`;
    const hostPaths = (spec.volumes || []).filter((v) => v.hostPath);
    check(!hostPaths.some((v) => v.hostPath.path === '/dev' || v.hostPath.path.startsWith('/dev/')), `${w}: no hostPath of /dev`,
      hostPaths.map((v) => v.hostPath.path).join(', '));
    check(hostPaths.length === 0, `${w}: no hostPath at all`, hostPaths.map((v) => v.hostPath.path).join(', '));
    check(spec.automountServiceAccountToken === false, `${w}: automountServiceAccountToken false`);
    const requested = new Set();
    for (const c of allContainers(spec)) {
      const res = c.resources || {};
      for (const kind of ['limits', 'requests']) for (const k of Object.keys(res[kind] || {})) if (k.startsWith('kubeaccel.io/')) requested.add(k);
      check(effective(spec, c, 'runAsNonRoot') === true, `${w} container ${c.name}: runAsNonRoot`);
      const uid = effective(spec, c, 'runAsUser');
      check(uid !== undefined && uid !== 0, `${w} container ${c.name}: runs as a non-root uid (${uid})`);
    }
    check(requested.size > 0, `${w}: requests a kubeaccel.io/ resource (${[...requested].join(', ') || 'none'})`);
    if (requested.has('kubeaccel.io/nvidia-gpu') && /gpu-shared/.test(w)) {
      // A pod sharing a GPU through a slot: nothing of the GPU itself.
      const envs = spec.containers.flatMap((c) => (c.env || []).map((e) => e.name));
      check(!envs.some((n) => n.startsWith('NVIDIA_') || n === 'CUDA_VISIBLE_DEVICES'),
        `${w}: no NVIDIA_* or CUDA_VISIBLE_DEVICES in the pod (it gets only its slot socket)`, envs.join(', '));
      check(!spec.runtimeClassName, `${w}: no runtime class (no GPU in the container)`, spec.runtimeClassName);
    }
    for (const r of requested) {
      const cls = classOf(baseCatalog, r.slice('kubeaccel.io/'.length));
      if (baseCatalog) check(!!cls, `${w}: ${r} is a class of the base catalog`);
      if (cls && cls.mode === 'agent') {
        const c = spec.containers[0];
        const words = [...(c.command || []), ...(c.args || [])].join(' ');
        check(effective(spec, c, 'runAsUser') === 65534, `${w}: agent-mode example runs as uid 65534`);
        check(/\bkubeaccel infer\b/.test(words) && /--model squeezenet/.test(words) && !/--socket/.test(words),
          `${w}: runs kubeaccel infer --model squeezenet on $KUBEACCEL_INFERENCE_SOCKET`, words);
      }
    }
  }
}

// The strict-field check must catch a planted typo, or its silence means nothing.
const planted = unknownFields({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' },
  spec: { containers: [{ name: 'c', securityContext: { readOnlyRootFileSystem: true } }] } });
check(planted.length === 1 && planted[0].includes('readOnlyRootFileSystem'), 'self-test: the unknown-field check catches a planted typo', planted.join('; '));

console.log(failed ? `deploy manifests: ${failed} of ${passed + failed} checks FAILED` : `deploy manifests: all ${passed} checks passed`);
process.exit(failed ? 1 : 0);
