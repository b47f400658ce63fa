// validate.mjs: checks rendered Kubernetes manifests (multi-document YAML on stdin, `helm template`
// output) against the Kubernetes API schemas (kubernetes-models) and the Prometheus Operator CRDs,
// plus the project's own rules for the chart. Prints one line per problem; exit 1 when any.
//   helm template ... | node tests/deploy/validate.mjs [--expect Kind,Kind,...]
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import * as k8s from "kubernetes-models";
import * as promOp from "@kubernetes-models/prometheus-operator";

const expect = (process.argv.find((a, i) => process.argv[i - 1] === "--expect") || "")
  .split(",").filter(Boolean);
const docs = parseAllDocuments(readFileSync(0, "utf8"));
const problems = [];
const seen = [];

function modelFor(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const ns = group === "" ? k8s : group === "monitoring.coreos.com" ? promOp : k8s;
  // kubernetes-models exposes groups as namespaces: apps.v1.Deployment, v1.Service (core)
  const path = group === "" ? [version, kind] : group === "monitoring.coreos.com"
    ? ["monitoringCoreosCom", version, kind] : [...group.replace(/\.k8s\.io$/, "K8sIo").split("."), version, kind];
  let m = ns;
  for (const p of path) m = m?.[p.replace(/[.-](\w)/g, (_, c) => c.toUpperCase())];
  return m;
}

for (const d of docs) {
  if (d.errors.length) { problems.push(`YAML: ${d.errors[0].message}`); continue; }
  const o = d.toJS();
  if (!o) continue;
  const id = `${o.kind}/${o.metadata?.name}`;
  seen.push(o.kind);
  const Model = modelFor(o.apiVersion, o.kind);
  if (!Model) { problems.push(`${id}: no schema for ${o.apiVersion} ${o.kind}`); continue; }
  try { new Model(o).validate(); } catch (e) { problems.push(`${id}: ${e.message.split("\n").slice(0, 3).join(" ")}`); }

  const spec = o.kind === "Deployment" || o.kind === "Job" ? o.spec.template.spec : null;
  // the hardening rules hold for the project's image; the development-only PostgreSQL pod
  // (postgresql.enabled) runs the stock postgres image, which needs root to start
  const ours = o.metadata.labels?.["app.kubernetes.io/component"] !== "postgresql";
  if (spec && ours) {
    for (const c of spec.containers) {
      const sc = c.securityContext || {};
      if (sc.readOnlyRootFilesystem !== true) problems.push(`${id}: container ${c.name} without readOnlyRootFilesystem`);
      if (!sc.capabilities?.drop?.includes("ALL")) problems.push(`${id}: container ${c.name} keeps capabilities`);
      if (sc.allowPrivilegeEscalation !== false) problems.push(`${id}: container ${c.name} allows privilege escalation`);
      for (const e of c.env || []) {
        if (/URL|SECRET|PASSWORD/.test(e.name) && e.value !== undefined && !/^AUTH_JWKS_URL$/.test(e.name))
          problems.push(`${id}: ${e.name} is a plain value, not a Secret reference`);
      }
    }
    if (spec.securityContext?.runAsNonRoot !== true) problems.push(`${id}: pod without runAsNonRoot`);
  }
  if (o.kind === "Deployment" && ours) {
    const c = spec.containers[0];
    if (c.readinessProbe?.httpGet?.path !== "/ready") problems.push(`${id}: readiness is not /ready`);
    if (c.livenessProbe?.httpGet?.path !== "/health") problems.push(`${id}: liveness is not /health`);
    if (!c.startupProbe) problems.push(`${id}: no startup probe`);
    if (!c.lifecycle?.preStop) problems.push(`${id}: no preStop wait`);
    const shutdown = Number((c.env.find((e) => e.name === "SHUTDOWN_TIMEOUT") || {}).value || 10);
    if (!(spec.terminationGracePeriodSeconds > shutdown)) problems.push(`${id}: terminationGracePeriodSeconds <= SHUTDOWN_TIMEOUT`);
  }
  if (o.kind === "Job") {
    const env = spec.containers[0].env || [];
    const urls = env.filter((e) => /^DATABASE_URL/.test(e.name)).map((e) => e.valueFrom?.secretKeyRef?.key);
    if (urls.length !== 1 || urls[0] !== "DATABASE_URL_UNPOOLED") problems.push(`${id}: the migration Job must use DATABASE_URL_UNPOOLED only, has ${urls}`);
  }
}
// a Service or PDB must select the API pods and nothing else (not the migration or database pods)
const pods = docs.map((d) => d.toJS()).filter((o) => o && (o.kind === "Deployment" || o.kind === "Job"))
  .map((o) => ({ id: `${o.kind}/${o.metadata.name}`, labels: o.spec.template.metadata?.labels || {},
                 api: o.kind === "Deployment" && o.metadata.labels?.["app.kubernetes.io/component"] !== "postgresql" }));
for (const o of docs.map((d) => d.toJS()).filter((o) => o && /^(Service|PodDisruptionBudget)$/.test(o.kind))) {
  const sel = o.kind === "Service" ? o.spec.selector : o.spec.selector?.matchLabels;
  const hit = pods.filter((p) => Object.entries(sel || {}).every(([k, v]) => p.labels[k] === v));
  const own = o.metadata.name.endsWith("-postgresql");
  const bad = hit.filter((p) => own ? !p.id.endsWith("-postgresql") : !p.api);
  if (!hit.length || bad.length) problems.push(`${o.kind}/${o.metadata.name}: selects ${hit.map((p) => p.id).join(", ") || "nothing"}`);
}
for (const k of expect) if (!seen.includes(k)) problems.push(`expected a ${k}, none rendered`);
for (const p of problems) console.log(`validate: ${p}`);
console.log(`validate: ${seen.length} manifests (${seen.join(", ")}), ${problems.length} problems`);
process.exit(problems.length ? 1 : 0);
