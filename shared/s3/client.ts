/**
 * S3 clients for JCDS. Credentials come from a provider function (the vault), so a
 * renewal swaps keys under a running upload without restarting any part.
 *
 * Checksums: `WHEN_REQUIRED` for both directions. With the SDK's default, stream bodies
 * go out as aws-chunked with trailing checksums, which some S3-compatible servers store
 * or refuse (see shared/local-s3.md); and the SDK would add its own CRC32 to requests
 * that need none. Parts carry an x-amz-checksum-crc32 of our own instead
 * (shared/upload/multipart.ts), computed once per part: the SDK's flexible-checksums
 * middleware leaves a request that already has an x-amz-checksum-* header alone, so each
 * part goes with exactly that one checksum (test/unit/shared/s3/client.test.ts captures
 * the requests). PutObject asks for CRC32 with ChecksumAlgorithm, which the SDK computes
 * over the Buffer lib-storage hands it (shared/upload/single.ts).
 */
import { Agent } from 'node:https';
import { Agent as HttpAgent } from 'node:http';
import { S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@aws-sdk/types';

export interface S3ClientSettings {
  region: string;
  /** An endpoint override (AWS_ENDPOINT_URL_S3); implies path-style addressing. */
  endpoint?: string | undefined;
  credentials: AwsCredentialIdentity | AwsCredentialIdentityProvider;
  maxSockets?: number;
}

export function createS3Client(settings: S3ClientSettings): S3Client {
  const maxSockets = settings.maxSockets ?? 32;
  const client = new S3Client({
    region: settings.region,
    ...(settings.endpoint ? { endpoint: settings.endpoint, forcePathStyle: true } : {}),
    credentials: settings.credentials,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // Retries of our own (per part, with credential renewal) sit above the SDK's.
    maxAttempts: 2,
    // No `Expect: 100-continue`: with our own agents the SDK writes the body without waiting
    // for the 100, so a server that answers early (SlowDown, ExpiredToken) and closes races
    // the upload and the client sees "write EPIPE" instead of the error, which is then
    // neither renewed nor treated as throttling (test/integration/faults-services.test.ts F6).
    expectContinueHeader: false,
    requestHandler: new NodeHttpHandler({
      httpAgent: new HttpAgent({ keepAlive: true, maxSockets }),
      httpsAgent: new Agent({ keepAlive: true, maxSockets }),
      connectionTimeout: 10_000,
      // No total request timeout: a multi-GiB CompleteMultipartUpload may be quiet for
      // minutes. Idle sockets are still detected by the socket timeout.
      socketTimeout: 300_000,
    }),
  });
  // Sign bodies as UNSIGNED-PAYLOAD instead of hashing every byte with SHA-256 for the
  // signature: parts and PutObject carry a CRC32 (x-amz-checksum-crc32) that S3 checks, so
  // integrity is kept, and a worker saves one full pass of CPU over everything it sends.
  client.middlewareStack.add(
    next => async args => {
      const request = args.request as { headers?: Record<string, string>; body?: unknown };
      if (request.headers && request.body !== undefined && request.body !== null) {
        request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      }
      return next(args);
    },
    { step: 'build', name: 'jcdsUnsignedPayload', priority: 'low' },
  );
  return client;
}
