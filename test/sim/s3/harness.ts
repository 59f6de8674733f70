/**
 * Test harness for the S3 endpoint alone: a DiskObjectStore and a FileCredentialRegistry in
 * a temp dir, the server on a free loopback port, SDK clients for the issued credential, and
 * a raw signed-request helper for what the SDK will not send (signed aws-chunked bodies,
 * wrong checksums). Records each request's x-amz-content-sha256 so tests can assert which
 * body encoding a client really used.
 */
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { Sha256 } from '@smithy/core/checksum';
import { SignatureV4 } from '@smithy/signature-v4';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { emptyCounters } from '../counters.ts';
import { FileCredentialRegistry } from '../credentials.ts';
import { DiskObjectStore } from '../store.ts';
import type { Counters, Faults, IssuedCredential } from '../types.ts';
import { createS3Server } from './server.ts';
import { uriEncode } from './sigv4.ts';

export const REGION = 'us-east-1';

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface RawRequest {
  method: string;
  /** Path after the endpoint, already URI-encoded ("/bucket/key"). */
  path: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: Buffer;
  credential?: IssuedCredential;
}

export class S3Harness {
  readonly dir: string;
  readonly store: DiskObjectStore;
  readonly registry: FileCredentialRegistry;
  readonly faults: Faults = {};
  readonly counters: Counters = emptyCounters();
  readonly credential: IssuedCredential;
  /** x-amz-content-sha256 of every request received, in order. */
  readonly payloadModes: string[] = [];
  /** Requests that arrived with `Expect: 100-continue`. */
  expectContinueRequests = 0;
  port = 0;
  private server: http.Server | undefined;

  private constructor(dir: string) {
    this.dir = dir;
    this.store = new DiskObjectStore(path.join(dir, 's3'));
    this.registry = new FileCredentialRegistry(dir);
    this.credential = this.registry.issue(3600);
  }

  static async start(): Promise<S3Harness> {
    const h = new S3Harness(await mkdtemp(path.join(tmpdir(), 'sim-s3-')));
    await h.listen(0);
    return h;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts the server (again) on `port` over the same store. */
  async listen(port: number): Promise<void> {
    const server = createS3Server({
      store: this.store,
      credentials: this.registry,
      faults: this.faults,
      counters: this.counters,
      region: REGION,
    });
    const record = (req: http.IncomingMessage): void => {
      this.payloadModes.push(String(req.headers['x-amz-content-sha256'] ?? ''));
    };
    server.prependListener('request', record);
    server.prependListener('checkContinue', (req: http.IncomingMessage) => {
      this.expectContinueRequests++;
      record(req);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Stops the server, cutting open connections (the store stays). */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await new Promise<void>(resolve => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  async close(): Promise<void> {
    await this.stop();
    await this.store.close();
    await rm(this.dir, { recursive: true, force: true });
  }

  client(extra: Partial<S3ClientConfig> = {}, credential = this.credential): S3Client {
    return new S3Client({
      endpoint: this.endpoint,
      region: REGION,
      forcePathStyle: true,
      maxAttempts: 1,
      credentials: {
        accessKeyId: credential.accessKeyId,
        secretAccessKey: credential.secretAccessKey,
        sessionToken: credential.sessionToken,
      },
      ...extra,
    });
  }

  /** Signs with the AWS SDK's SigV4 signer and sends with node:http. */
  async raw(r: RawRequest): Promise<RawResponse & { signature: string }> {
    const credential = r.credential ?? this.credential;
    const signer = new SignatureV4({
      credentials: credential,
      region: REGION,
      service: 's3',
      sha256: Sha256,
      uriEscapePath: false,
    });
    const signed = await signer.sign({
      method: r.method,
      protocol: 'http:',
      hostname: '127.0.0.1',
      port: this.port,
      path: r.path,
      query: r.query ?? {},
      headers: { host: `127.0.0.1:${this.port}`, ...r.headers },
    });
    const signature =
      /Signature=([0-9a-f]{64})/.exec(String(signed.headers['authorization']))?.[1] ?? '';
    const qs = Object.entries(r.query ?? {})
      .map(([k, v]) => `${uriEncode(k)}=${uriEncode(v)}`)
      .join('&');
    const res = await send(
      this.port,
      r.method,
      qs ? `${r.path}?${qs}` : r.path,
      signed.headers,
      r.body,
    );
    return { ...res, signature };
  }
}

export function send(
  port: number,
  method: string,
  pathAndQuery: string,
  headers: Record<string, string>,
  body?: Buffer,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method, path: pathAndQuery, headers },
      res => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The <Code> of an S3 XML error body. */
export function errorCode(body: Buffer): string | undefined {
  return /<Code>([^<]*)<\/Code>/.exec(body.toString())?.[1];
}
