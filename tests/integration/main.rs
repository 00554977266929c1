//! Integration tests: the real gateway against a real S3 implementation (s3s-fs) over TCP with
//! mutual TLS and SigV4, and the real binary where its exit codes and logs are the subject.

// Shared fixtures: backend, gateway, HTTP client, binary runner.
mod util;

// A TCP proxy that injects backend faults (hang, reset, stall, kill).
mod proxy;

// A memory cgroup for the gateway: memory as a pod's limit counts it.
mod cgroup;

// Memory measured in the gateway's own cgroup.
mod memory;

// Outages, hangs, idle and hostile clients, accounting of aborted downloads.
mod faults;

// GET/HEAD of the seeded GIF, 404, 400, 405, index.
mod serve;

// What real buckets do: a policy without ListBucket, a certificate for another name, long
// keys, conditional GETs, objects whose own Cache-Control binds the cache.
mod buckets;

// Table-driven HTTP conformance (RFC 9110 ranges and preconditions, keys, index, error and
// SPA documents, content type, cache policy, listing, CORS, limits).
mod conformance;

// Headless Chromium loads a page and the GIF through the gateway.
mod browser;

// Content codings: negotiation, codings kept in the cache, what goes as stored.
mod compression;

// Change events: MinIO's ListenBucketNotification drops changed objects at once.
mod events;

// Uploads from clients at today's defaults (boto3, aws-chunked with checksum trailers).
mod uploads;

// Several sites by Host from a sites file.
mod sites;

// Site rules: headers and redirects by path, from the sites file and from the bucket.
mod rules;

// No static keys: temporary credentials for the client certificate.
mod identity;

// POST /purge: the token, a key, a prefix, everything.
mod purge;

// The object cache: hits, coalescing, revalidation, stale-if-error, negative cache, bounds.
mod cache;

// The disk tier: slices, ranges, restarts, purges, bounds and disk failures.
mod disk;

// Operations: Prometheus scrape, SIGTERM drain, slow-loris, JSON logs and request ids.
mod ops;

// Certificate rotation without a restart.
mod rotation;

// Backend failures: wrong secret, missing or foreign client certificate.
mod failures;

// `gateway seed`: idempotence, --no-overwrite, waiting for a late backend, fatal errors.
mod seed;

// A 64 MiB object streamed through intact.
mod stream;

// The binary: --help, config errors with exit code 2, `gateway demo`, SIGTERM drain.
mod binary;

// The README holds to the binary: flags, metrics, error examples, the HTTP table.
mod docs;
