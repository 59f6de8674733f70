/**
 * The error registry: one entry per stable error code, saying everything the product
 * decides by code (shared/errors.ts explains who reads which field). Data only.
 */

/**
 * Whether an error with this code is throttling (the worker rate-limits the whole queue
 * and puts the job back without using an attempt): always, never, or only when the
 * error's HTTP `status` is 503.
 */
export type ThrottleRule = boolean | 'status-503';

export interface ErrorSpec {
  /** One line: what the code means (the README's troubleshooting table). */
  readonly summary: string;
  /** The `jcds` exit code when this error ends a command: 1 failed, 2 usage/input, 3 configuration/connection. */
  readonly exit: 1 | 2 | 3;
  /** Whether an AppError with this code is retryable when its throw site does not say. */
  readonly retryable: boolean;
  readonly throttle: ThrottleRule;
  /** Advice printed under a command that ended with this error. */
  readonly hint?: string;
  /** Advice for a failed job whose reason has this code (falls back to `hint`). */
  readonly jobHint?: string;
}

/**
 * Where `retryable` depends on the instance, the throw site passes it explicitly and the
 * entry says so; everywhere else the sites rely on the value here.
 */
export const ERROR_REGISTRY = {
  CONFIG_INVALID: {
    summary: 'The environment is missing a variable or has an invalid value.',
    exit: 3,
    retryable: false,
    throttle: false,
    hint: 'Set the variables above (see "Configuration" in README.md) and run the command again.',
  },
  USAGE: {
    summary: 'The command line or an argument is wrong.',
    exit: 2,
    retryable: false,
    throttle: false,
  },
  FILE_NOT_FOUND: {
    summary: 'A local file does not exist.',
    exit: 2,
    retryable: false,
    throttle: false,
    jobHint: 'The file was moved or deleted after it was enqueued; enqueue it again.',
  },
  FILE_NOT_REGULAR: {
    summary: 'A path is a directory or another non-regular file.',
    exit: 2,
    retryable: false,
    throttle: false,
  },
  FILE_UNREADABLE: {
    summary: 'A local file cannot be read (permissions).',
    exit: 2,
    retryable: false,
    throttle: false,
  },
  FILE_EMPTY: {
    summary: 'A local file is empty (zero bytes).',
    exit: 2,
    retryable: false,
    throttle: false,
  },
  FILE_TOO_LARGE: {
    summary: 'A file needs more than 10,000 parts of 5 GiB.',
    exit: 2,
    retryable: false,
    throttle: false,
  },
  FILE_CHANGED: {
    summary: 'A file changed on disk while it was being uploaded.',
    exit: 2,
    retryable: false,
    throttle: false,
    jobHint: 'Wait until the file is final, then upload it again.',
  },
  UNSUPPORTED_FILE_TYPE: {
    summary: 'The extension is not pkg, mpkg, dmg or zip.',
    exit: 2,
    retryable: false,
    throttle: false,
  },
  JOB_DATA_INVALID: {
    summary:
      'A job in the queue lacks what jcds records when it enqueues (added by hand or by an older version).',
    exit: 2,
    retryable: false,
    throttle: false,
    jobHint:
      'Enqueue the file again with jcds upload (or jcds sync); jobs added in the dashboard must copy the data of one jcds made.',
  },
  SYMLINK_OUTSIDE: {
    summary: 'A symbolic link in a synced folder points outside it; it was not followed.',
    exit: 2,
    retryable: false,
    throttle: false,
    hint: 'Move the file into the folder, or pass --follow-symlinks (followSymlinks: true in the API) if the link is meant.',
  },
  UNSAFE_FILE_NAME: {
    summary: 'A file name contains "/", "..", NUL or control characters.',
    exit: 2,
    retryable: false,
    throttle: false,
  },
  DESTINATION_EXISTS: {
    summary: 'A download destination exists and overwrite was not asked for.',
    exit: 2,
    retryable: false,
    throttle: false,
    hint: 'Rerun with --overwrite to replace it, or give another destination.',
    jobHint: 'Rerun with --overwrite, or choose another destination.',
  },
  DESTINATION_INVALID: {
    summary: 'A download destination folder does not exist or cannot be written.',
    exit: 2,
    retryable: false,
    throttle: false,
    hint: 'Give an existing folder (or a file path in one) that this user can write.',
  },
  DESTINATION_NOT_ALLOWED: {
    summary:
      'A download destination is outside the folders the worker may write (JCDS_DOWNLOAD_DIRS).',
    exit: 2,
    retryable: false,
    throttle: false,
    hint: "Download into a folder listed in the workers' JCDS_DOWNLOAD_DIRS (default: the worker's working directory), or add the folder there.",
  },
  DISK_FULL: {
    summary: 'The disk is full (ENOSPC).',
    exit: 1,
    retryable: false,
    throttle: false,
  },
  REDIS_UNAVAILABLE: {
    summary: 'Redis cannot be reached.',
    exit: 3,
    retryable: true,
    throttle: false,
    hint: 'Start Redis (`redis-server`, `docker compose up -d redis`) or point REDIS_URL at a running one.',
  },
  REDIS_EVICTION_POLICY: {
    summary:
      "Redis' maxmemory-policy is not noeviction (or cannot be read): it may delete job data and locks.",
    exit: 3,
    retryable: false,
    throttle: false,
    hint: 'Run `redis-cli -u "$REDIS_URL" CONFIG SET maxmemory-policy noeviction` and set it in redis.conf; or, knowing jobs may be lost, start the worker with JCDS_ALLOW_REDIS_EVICTION=1 (`jcds worker --allow-eviction`).',
  },
  JAMF_UNREACHABLE: {
    summary: 'Jamf Pro cannot be reached (network error or not a Jamf Pro server).',
    exit: 3,
    // Instance-dependent: jamfNetworkError passes it by the network error code (a reset or
    // refused connection is retryable, ENOTFOUND is not).
    retryable: true,
    throttle: false,
    hint: 'Check JAMF_URL (https://yourinstance.jamfcloud.com), your network/proxy, and that the server answers in a browser.',
  },
  JAMF_AUTH_FAILED: {
    summary: 'Jamf Pro refused the credentials.',
    exit: 3,
    retryable: false,
    throttle: false,
    hint: 'Check JAMF_CLIENT_ID/JAMF_CLIENT_SECRET (API Roles and Clients in Jamf Pro) or JAMF_USERNAME/JAMF_PASSWORD, and that the client is enabled.',
    jobHint: "Check the workers' Jamf credentials (JAMF_CLIENT_ID/JAMF_CLIENT_SECRET).",
  },
  JAMF_FORBIDDEN: {
    summary: 'The Jamf Pro account lacks a privilege.',
    exit: 3,
    retryable: false,
    throttle: false,
    hint: 'Give the API role the privileges listed under "Using it with a real Jamf Pro" in README.md.',
    jobHint: "Give the workers' API role the privileges listed in README.md.",
  },
  JAMF_NOT_FOUND: {
    summary: 'A Jamf Pro object or endpoint does not exist.',
    exit: 3,
    retryable: false,
    throttle: false,
  },
  JAMF_CONFLICT: {
    summary: 'Jamf Pro refused a duplicate (e.g. DUPLICATE_FIELD).',
    exit: 3,
    retryable: false,
    throttle: false,
  },
  JAMF_BAD_REQUEST: {
    summary: 'Jamf Pro refused the request as invalid.',
    exit: 3,
    retryable: false,
    throttle: false,
  },
  JAMF_RATE_LIMITED: {
    summary: 'Jamf Pro answered 429 Too Many Requests.',
    exit: 3,
    retryable: true,
    throttle: true,
  },
  JAMF_UNAVAILABLE: {
    summary: 'Jamf Pro answered 5xx.',
    exit: 3,
    // Instance-dependent: jamfErrorFromResponse passes it by status (408, 502, 503 and 504
    // are retryable; 500, 501 and other 5xx are not).
    retryable: true,
    // Jamf's 503 (overloaded, or a node being restarted) outlasting the client's retries is
    // throttling too: a burst longer than the job's attempts must not fail the job.
    throttle: 'status-503',
  },
  JAMF_BAD_RESPONSE: {
    summary: 'Jamf Pro answered something that is not what its API documents.',
    exit: 3,
    retryable: false,
    throttle: false,
  },
  JCDS_UNAVAILABLE: {
    summary: 'The JCDS v1 endpoints are not available on this server.',
    exit: 3,
    retryable: false,
    throttle: false,
    hint: 'This server has no JCDS v1 endpoints: set JCDS_TRANSPORT=package-upload (Jamf Pro 11.5+).',
  },
  NO_CLOUD_DISTRIBUTION_POINT: {
    summary: 'Jamf Pro has no cloud distribution point (cdnType NONE): no upload can be stored.',
    exit: 3,
    retryable: false,
    throttle: false,
    hint: 'In Jamf Pro, Settings > Server > Cloud distribution point: choose Jamf Cloud, then run `jcds doctor` again.',
  },
  PACKAGE_EXISTS: {
    summary: 'A package with this file name exists (ifExists=fail, or skip with a different hash).',
    exit: 1,
    retryable: false,
    throttle: false,
    jobHint:
      'Rerun with --if-exists replace to overwrite it, or rename the file. (--if-exists skip keeps the one in Jamf only when its contents are the same.)',
  },
  S3_ERROR: {
    summary: 'S3 refused a request.',
    exit: 1,
    // Instance-dependent: toS3AppError passes it by S3 code and HTTP status (network errors
    // and 5xx are retryable, 4xx are not).
    retryable: false,
    throttle: false,
  },
  S3_CREDENTIALS_EXPIRED: {
    summary: 'The temporary S3 credentials expired.',
    exit: 1,
    retryable: true,
    throttle: false,
    jobHint: 'Retry the upload; the credentials are renewed automatically.',
  },
  S3_SLOW_DOWN: {
    summary: 'S3 asked the client to slow down.',
    exit: 1,
    retryable: true,
    throttle: true,
  },
  PART_FAILED: {
    summary: 'A part of a multipart upload failed for good.',
    exit: 1,
    retryable: false,
    throttle: false,
    jobHint:
      'A part failed for good; see `jcds status JOB_ID` for the part and its reason. Once that is fixed, `jcds retry JOB_ID` (or Retry in the dashboard) sends only the parts not done.',
  },
  UPLOAD_INCOMPLETE: {
    summary: 'S3 does not hold every part the upload needs.',
    exit: 1,
    // A retry of the upload re-adds the missing part jobs.
    retryable: true,
    throttle: false,
  },
  VERIFY_FAILED: {
    summary: 'The stored file hash does not equal the local hash.',
    exit: 1,
    retryable: false,
    throttle: false,
    jobHint:
      'The stored file differs from the local one: upload it again (--if-exists replace); if it repeats, check the network path for a proxy that rewrites bodies.',
  },
  VERIFY_TIMEOUT: {
    summary: 'Jamf did not report the stored file hash within the time bound.',
    exit: 1,
    retryable: true,
    throttle: false,
    jobHint:
      'Jamf did not report the hash in time: check the package in Jamf Pro, or raise JCDS_VERIFY_TIMEOUT.',
  },
  DOWNLOAD_FAILED: {
    summary: 'A download could not be completed.',
    exit: 1,
    // Instance-dependent: ranges that keep failing, an object that changed size, a hash
    // mismatch and EIO/EAGAIN are retryable (explicit at their sites); a missing object or
    // a URL S3 keeps refusing is not.
    retryable: false,
    throttle: false,
  },
  VAULT_SECRET_MISSING: {
    summary: 'JCDS_FLEET_SECRET is needed to encrypt credentials in Redis.',
    exit: 3,
    retryable: false,
    throttle: false,
    jobHint: 'Set JCDS_FLEET_SECRET (the same value) on every worker.',
  },
  VAULT_DECRYPT_FAILED: {
    summary: 'Credentials in Redis cannot be decrypted (a different JCDS_FLEET_SECRET?).',
    exit: 3,
    retryable: false,
    throttle: false,
    jobHint: 'Every worker must use the same JCDS_FLEET_SECRET.',
  },
  FLEET_SECRET_MISMATCH: {
    summary:
      "JCDS_FLEET_SECRET differs from the fleet's (the verifier in Redis): the worker refuses to start.",
    exit: 3,
    retryable: false,
    throttle: false,
    hint: 'Set JCDS_FLEET_SECRET to the value every other worker uses; to change the secret, follow "Rotating the fleet secret" in README.md (JCDS_FLEET_SECRET_PREVIOUS, then `jcds vault rotate`).',
    jobHint:
      "A worker's JCDS_FLEET_SECRET is not the fleet's: the job went back to the queue for another worker; fix or stop that worker.",
  },
  JOB_NOT_FOUND: {
    summary: 'No job has this id.',
    exit: 2,
    retryable: false,
    throttle: false,
    hint: 'List recent jobs with `jcds status`; finished jobs are removed after 7 days.',
  },
  JOB_NOT_FAILED: {
    summary: 'The job is not failed, so there is nothing to retry.',
    exit: 2,
    retryable: false,
    throttle: false,
    hint: 'Only a failed job can be retried (`jcds status` shows the state of each job): a waiting or active job is being worked on, and a completed one is done (upload the file again to replace it).',
  },
  // Not a failure of the job: the worker stops its run and leaves the job to the worker that
  // holds the lock now (worker/fence.ts). Never a job's failure reason: BullMQ refuses the
  // stale worker's move, and the failure policy neither counts nor cleans up after it.
  LOCK_LOST: {
    summary:
      "A worker lost a job's lock (frozen or cut off past the lock duration) and stopped its run; another worker owns the job.",
    exit: 1,
    retryable: true,
    throttle: false,
    jobHint:
      'Nothing to do: the worker that holds the lock now carries on. Frequent lost locks mean workers stall past JCDS_LOCK_DURATION (CPU starvation, a VM paused, Redis unreachable).',
  },
  INTERNAL: {
    summary: 'An unexpected error; please report it.',
    exit: 1,
    retryable: false,
    throttle: false,
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_REGISTRY;

/** Code -> one-line description (the registry's `summary`), in registry order. */
export const ERROR_CODES = Object.fromEntries(
  Object.entries(ERROR_REGISTRY).map(([code, spec]) => [code, spec.summary]),
) as { readonly [C in ErrorCode]: (typeof ERROR_REGISTRY)[C]['summary'] };

/** The registry entry of a code; undefined for a code the product does not raise. */
export function errorSpec(code: string | undefined): ErrorSpec | undefined {
  return code !== undefined && Object.hasOwn(ERROR_REGISTRY, code)
    ? ERROR_REGISTRY[code as ErrorCode]
    : undefined;
}
