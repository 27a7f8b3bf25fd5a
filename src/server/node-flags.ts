// The V8 flags the service runs with: the image's ENTRYPOINT passes them, the test harness
// and `npm run dev` pass the same ones (a unit test keeps the Dockerfile in step).
//
// Why: by default V8 on a 64-bit host grows the young generation to 128 MiB committed; the
// paged lists of a large cluster's initial sync fill it and it stays committed. At 20,000
// agents that is RSS 304 MiB with 69 MiB of live heap; with 8 MiB semi-spaces the young
// generation is 16 MiB and RSS 224 MiB (bench:scale measures the throughput cost).
export const SERVE_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8'];
