// Reference 1, the limit: bare node:https reading the body and answering a constant
// AdmissionReview. No parsing, no decision: what TLS + HTTP alone cost on this machine.

import { BENCH_UID } from '../fixtures.ts';
import { parseArgs, serve } from './common.ts';

const reply = Buffer.from(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: BENCH_UID, allowed: true } }));

serve(parseArgs(process.argv.slice(2)), (req, res) => {
  req.on('data', () => {});
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': reply.length });
    res.end(reply);
  });
});
