/**
 * Small fakes for the upload engine's unit tests, in the style of @aws-sdk/lib-storage's
 * own specs: an S3 client whose `send` records every command and answers by
 * `command.constructor.name`, and a credential source that renews past a stale key.
 *
 * The client is a real S3Client (built by the real S3Sessions, with its credential
 * provider) whose `send` is replaced: each send resolves the client's credentials first,
 * as a signed request would, so the sessions see which access key was used; nothing
 * reaches the network.
 */
import { S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { vi } from 'vitest';
import { createLogger, type Logger } from '../../../../shared/logger.ts';
import {
  S3Sessions,
  type CredentialSource,
  type S3SessionsOptions,
} from '../../../../shared/upload/s3-sessions.ts';
import type { VaultCredentials } from '../../../../shared/vault.ts';

/** One command the fake client was sent. */
export interface SentCommand {
  name: string;
  input: Record<string, unknown>;
  /** The access key id the request was signed with. */
  accessKeyId: string;
}

/** Answers one command: returns the output, or throws the S3 error. */
export type Answer = (input: Record<string, unknown>, accessKeyId: string) => unknown;

export class FakeS3 {
  readonly sent: SentCommand[] = [];
  private readonly answers = new Map<string, Answer[]>();
  private readonly attached = new WeakSet<S3Client>();

  /** Answers `name` with each answer in turn; the last one repeats. */
  on(name: string, ...answers: Answer[]): this {
    this.answers.set(name, answers);
    return this;
  }

  /** The commands of one kind, in the order they were sent. */
  commands(name: string): SentCommand[] {
    return this.sent.filter(c => c.name === name);
  }

  /** Replaces the client's `send` with this fake (once per client). */
  attach(client: S3Client): S3Client {
    if (this.attached.has(client)) return client;
    this.attached.add(client);
    vi.spyOn(client, 'send').mockImplementation(async (command: object) => {
      const name = command.constructor.name;
      const input =
        'input' in command && typeof command.input === 'object' && command.input !== null
          ? Object.fromEntries(Object.entries(command.input))
          : {};
      const { accessKeyId } = await client.config.credentials();
      this.sent.push({ name, input, accessKeyId });
      const queue = this.answers.get(name);
      if (!queue || queue.length === 0) throw new Error(`FakeS3: no answer for ${name}`);
      const answer = queue.length > 1 ? queue.shift()! : queue[0]!;
      return answer(input, accessKeyId);
    });
    return client;
  }
}

export const ok =
  (output: unknown): Answer =>
  () =>
    output;

export const fail =
  (err: unknown): Answer =>
  () => {
    throw err;
  };

/** An S3 error as the SDK throws it (name = S3's code, the HTTP status in $metadata). */
export function s3Error(name: string, status: number, message = `${name} from S3`): Error {
  return new S3ServiceException({
    name,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status },
    message,
  });
}

/** A credential source whose key changes each time a caller names the current one as stale. */
export function fakeVault() {
  let generation = 1;
  const key = (): string => `AKID${generation}`;
  const get = vi.fn(async (name: string, staleAccessKeyId?: string): Promise<VaultCredentials> => {
    if (staleAccessKeyId !== undefined && staleAccessKeyId === key()) generation++;
    return {
      accessKeyId: key(),
      secretAccessKey: `secret-${name}-${generation}`,
      sessionToken: `token-${generation}`,
      expiration: Date.now() + 3_600_000,
      issuedAt: Date.now(),
      region: 'us-east-1',
      bucketName: 'jcds-bucket',
      path: 'files/',
    };
  });
  const source: CredentialSource = { get };
  /** The renewals asked for: [vault key, stale access key id]. */
  const renewals = (): Array<[string, string | undefined]> =>
    get.mock.calls.filter(c => c[1] !== undefined).map(c => [c[0], c[1]]);
  return { source, get, key, renewals };
}

/** Real S3Sessions whose clients answer from a FakeS3. */
export class FakeS3Sessions extends S3Sessions {
  readonly s3: FakeS3;

  constructor(s3: FakeS3, options: S3SessionsOptions) {
    super(options);
    this.s3 = s3;
  }

  override client(vaultKey: string, region: string): S3Client {
    return this.s3.attach(super.client(vaultKey, region));
  }
}

/** A logger whose JSON lines are kept in `lines`. */
export function captureLogger(): {
  logger: Logger;
  lines: () => Array<Record<string, unknown>>;
} {
  const raw: string[] = [];
  const logger = createLogger({ level: 'debug', destination: { write: s => void raw.push(s) } });
  return {
    logger,
    lines: () => raw.map(l => JSON.parse(l) as Record<string, unknown>),
  };
}
