/**
 * Contracts between the parts of the Jamf Pro + JCDS simulator (a test double: product
 * code never imports it). Two modules share these:
 *   - test/sim/s3/   the S3 endpoint (SigV4, multipart, ranges) over an on-disk ObjectStore;
 *   - test/sim/jamf/ the Jamf Pro API (auth, JCDS v1, packages, Classic API);
 * wired together by test/sim/server.ts and started by test/sim/main.ts.
 */

/** Temporary S3 credentials as the simulator issued them (the JCDS v1 endpoints). */
export interface IssuedCredential {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  /** Epoch milliseconds after which S3 answers ExpiredToken. */
  expiresAt: number;
}

/** Looks up and issues credentials; persisted under the data dir so a restart keeps them. */
export interface CredentialRegistry {
  issue(ttlSeconds: number): IssuedCredential;
  /** Renews: a new key set (new id, secret, token) with a fresh expiry. */
  renew(ttlSeconds: number): IssuedCredential;
  get(accessKeyId: string): IssuedCredential | undefined;
  /** Fault switch: every credential issued so far expires now. */
  expireAll(): void;
}

/** Hashes of a stored object, computed on the bytes actually stored. */
export interface ObjectHashes {
  size: number;
  md5: string;
  sha256: string;
  sha3_512: string;
}

export interface StoredObjectInfo {
  bucket: string;
  key: string;
  size: number;
  etag: string; // quoted, as S3 returns it: "md5hex" or "md5hex-N"
  lastModified: Date;
  contentType: string | undefined;
}

/**
 * Objects and multipart uploads kept on disk under dataDir. Bodies are streamed to disk,
 * never buffered whole.
 */
export interface ObjectStore {
  head(bucket: string, key: string): Promise<StoredObjectInfo | undefined>;
  list(bucket: string, prefix: string): Promise<StoredObjectInfo[]>;
  /** A readable stream of [start, end] inclusive (the whole object when omitted). */
  read(bucket: string, key: string, range?: { start: number; end: number }): NodeJS.ReadableStream;
  /** Writes a whole object from a stream (PutObject, or the Jamf package upload endpoint). */
  put(
    bucket: string,
    key: string,
    body: NodeJS.ReadableStream,
    contentType?: string,
  ): Promise<StoredObjectInfo>;
  delete(bucket: string, key: string): Promise<boolean>;
  /** Whole-object hashes; computed once per stored version and cached. */
  hashes(bucket: string, key: string): Promise<ObjectHashes | undefined>;
  /** Fault switch: flips bytes of the stored object (its cached hashes stay the old ones). */
  corrupt(bucket: string, key: string): Promise<void>;
  /** Open multipart uploads (for tests asserting that none is left behind). */
  listMultipartUploads(
    bucket: string,
  ): Promise<Array<{ key: string; uploadId: string; initiated: Date }>>;
}

/** Switchable faults for tests. Every field optional; an empty object means no faults. */
export interface Faults {
  /** Added latency on every Jamf API request, ms. */
  jamfLatencyMs?: number;
  /** Added latency on every S3 request, ms. */
  s3LatencyMs?: number;
  /** The next N Jamf API requests (other than token requests) answer 429 with Retry-After. */
  jamf429Count?: number;
  jamf429RetryAfterSeconds?: number;
  /** The next N Jamf API requests answer 503. */
  jamf503Count?: number;
  /** The next N S3 requests answer 503 SlowDown. */
  s3SlowDownCount?: number;
  /**
   * The next N S3 requests answer 400 InvalidRequest with `s3ErrorMessage` as S3's
   * `<Message>`: an S3-compatible gateway or proxy whose error text echoes what it received
   * (real S3 echoes the access key id, the signature and the canonical request, with its
   * x-amz-security-token header, in SignatureDoesNotMatch). For the secret sweeps.
   */
  s3ErrorCount?: number;
  /** The message of the s3ErrorCount answers. @defaultValue `Invalid request` */
  s3ErrorMessage?: string;
  /**
   * The next N Jamf API requests (not token requests) answer 400 with `jamfErrorBody` as a
   * text/plain body: a proxy or firewall in front of Jamf whose error page echoes the
   * request it refused (headers, query, body). For the secret sweeps.
   */
  jamfErrorCount?: number;
  /** The body of the jamfErrorCount answers. @defaultValue `Bad Request` */
  jamfErrorBody?: string;
  /** The next N S3 requests have their connection destroyed mid-request. */
  s3DropCount?: number;
  /** The next N Jamf requests have their connection destroyed. */
  jamfDropCount?: number;
  /** UploadPart for these part numbers always fails (500 InternalError), for every upload. */
  failPartNumbers?: number[];
  /**
   * UploadPart for these part numbers has the first byte of its body flipped on the way in
   * (after the client computed its checksum), for every upload: bytes corrupted in flight,
   * which S3 refuses with BadDigest (the part's x-amz-checksum-crc32 or Content-MD5).
   */
  corruptPartNumbers?: number[];
  /** Throttle S3 request/response bodies to this many bytes per second per request. */
  s3BytesPerSecond?: number;
  /**
   * Download URLs (`GET /api/v1/jcds/files/{fileName}`, CloudFront form) issued from now on
   * expire after this many seconds: the run-time override of `--download-url-ttl`.
   */
  presignTtlSeconds?: number;
  /** The next N token requests answer 401 (a revoked / wrong client). */
  tokenFailCount?: number;
  /**
   * Jamf's processing of a stored file (computing md5, sha256, sha3512, hashValue, size and
   * `cloudTransferStatus READY` after a package upload, or after a JCDS object appears for a
   * package record) takes this many ms instead of the `--processing-ms` setting. Applies to
   * processing scheduled from now on.
   */
  processingDelayMs?: number;
  /**
   * jamf-wire-2026.md 2, the transient state: after processing a REPLACE (the record already
   * had a processed file), the record shows the new hash, hashType SHA3_512 and READY with
   * the OLD file's size for this many ms, then the new size. 0 or absent: no transient.
   */
  staleSizeMs?: number;
  /**
   * jamf-wire-2026.md 2, "size 0: the bytes never landed": the next N processings record the
   * hash of what was sent (md5, sha256, sha3512, hashValue, hashType SHA3_512) with `size`
   * "0" and `cloudTransferStatus` IN_PROGRESS (never READY), and delete the stored object
   * (s3 transport: it leaves the JCDS listing; package upload: nothing stays stored). A
   * client that sends the bytes again once N is used up gets them processed normally.
   */
  bytesNeverLandCount?: number;
  /**
   * The next N JCDS objects stored through S3 (PutObject or CompleteMultipartUpload in the
   * JCDS bucket) are deleted right after S3 answered 200: `GET /api/v1/jcds/files` no longer
   * lists them and refresh-inventory computes nothing for them.
   */
  vanishObjectCount?: number;
}

/** One create or update of a package record, as the client sent it (field names only). */
export interface PackageWrite {
  method: 'POST' | 'PUT';
  /** `pro`: /api/v1/packages (JSON keys); `classic`: /JSSResource/packages (XML elements). */
  api: 'pro' | 'classic';
  /** The top-level field names of the body, in the order sent; never their values. */
  fields: string[];
}

/** Counters for tests to read (GET /__sim/counters on the Jamf port). */
export interface Counters {
  /** "METHOD /path/template" for Jamf (e.g. "POST /api/v1/jcds/files"), or the S3 operation name ("UploadPart"). */
  calls: Record<string, number>;
  /** UploadPart calls per part number, across all uploads ("3": 2). */
  uploadPartByNumber: Record<string, number>;
  /** Credential renewals (POST /api/v1/jcds/renew-credentials that succeeded). */
  credentialRenewals: number;
  /** Token requests (oauth + user token endpoints). */
  tokenRequests: number;
  /** Body bytes the S3 side served for GetObject (downloads). */
  s3BytesServed: number;
  /** Body bytes the S3 side received (PutObject + UploadPart). */
  s3BytesReceived: number;
  /**
   * Every create and update of a package record received (Pro and Classic API, refused
   * ones included), oldest first; the last 10,000 are kept.
   */
  packageWrites: PackageWrite[];
  /** Processings that set Jamf's computed hashes and size on a package record. */
  uploadsProcessed: number;
  /** Processings the bytesNeverLandCount fault turned into size "0". */
  bytesNeverLanded: number;
  /** JCDS objects the vanishObjectCount fault deleted. */
  objectsVanished: number;
}
