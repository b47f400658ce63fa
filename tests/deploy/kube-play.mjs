// kube-play.mjs: turns `helm template` output into what podman 4.3's `kube play` runs, changing only
// what podman cannot take as Kubernetes does (each change is a podman limit, not a chart choice):
//   - a Secret becomes a JSON file of base64 values for `podman secret create` (podman looks up
//     secretKeyRef in its own secret store, in that format);
//   - the Job becomes a Pod with the Job's pod template (podman 4.3 has no Job kind);
//   - with hostNetwork, containerPort entries are dropped (podman refuses port mappings on the host
//     network; Kubernetes ignores them there).
//   node kube-play.mjs RENDERED.yaml OUTDIR   -> OUTDIR/secret-NAME.json, OUTDIR/job.yaml, OUTDIR/deployment.yaml
import { readFileSync, writeFileSync } from "node:fs";
import { parseAllDocuments, stringify } from "yaml";

const [file, out] = process.argv.slice(2);
const docs = parseAllDocuments(readFileSync(file, "utf8")).map((d) => d.toJS()).filter(Boolean);
const must = (kind) => docs.find((d) => d.kind === kind) || (console.error(`kube-play: no ${kind} rendered`), process.exit(1));
const noPorts = (spec) => {
  if (spec.hostNetwork) for (const c of spec.containers) delete c.ports;
  return spec;
};
for (const s of docs.filter((d) => d.kind === "Secret")) {
  const data = { ...(s.data || {}) };
  for (const [k, v] of Object.entries(s.stringData || {})) data[k] = Buffer.from(String(v)).toString("base64");
  writeFileSync(`${out}/secret-${s.metadata.name}.json`, JSON.stringify(data));
}
const job = must("Job");
writeFileSync(`${out}/job.yaml`, stringify({
  apiVersion: "v1", kind: "Pod",
  metadata: { name: job.metadata.name, labels: job.spec.template.metadata.labels },
  spec: noPorts(job.spec.template.spec),
}));
const dep = must("Deployment");
noPorts(dep.spec.template.spec);
writeFileSync(`${out}/deployment.yaml`, stringify(dep));
console.log(JSON.stringify({
  job: job.metadata.name, deployment: dep.metadata.name,
  preStop: dep.spec.template.spec.containers[0].lifecycle?.preStop?.exec?.command || null,
  grace: dep.spec.template.spec.terminationGracePeriodSeconds,
}));
