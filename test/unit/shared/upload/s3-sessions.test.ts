/**
 * S3Sessions (shared/upload/s3-sessions.ts): one client per upload, dropped on release or
 * past maxClients, credentials read from the vault on every request, and withRenewal's
 * renew-and-resend after ExpiredToken (or a HEAD's bare 400).
 */
import { describe, expect, it, vi } from 'vitest';
import { S3Sessions } from '../../../../shared/upload/s3-sessions.ts';
import { fakeVault, s3Error } from './fake-s3.ts';

function setup(options: { maxClients?: number; maxRenewals?: number } = {}) {
  const vault = fakeVault();
  const sessions = new S3Sessions({ vault: vault.source, ...options });
  return { vault, sessions };
}

describe('S3Sessions.client', () => {
  it('keeps one client per vault key', () => {
    const { sessions } = setup();
    const a = sessions.client('upload-a', 'us-east-1');
    expect(sessions.client('upload-a', 'us-east-1')).toBe(a);
    const b = sessions.client('upload-b', 'eu-west-1');
    expect(b).not.toBe(a);
    expect(sessions.client('upload-b', 'eu-west-1')).toBe(b);
    sessions.close();
  });

  it("asks the vault for the upload's credentials on every request", async () => {
    const { sessions, vault } = setup();
    const client = sessions.client('upload-a', 'us-east-1');
    const first = await client.config.credentials();
    await client.config.credentials();
    expect(first).toMatchObject({ accessKeyId: 'AKID1', sessionToken: 'token-1' });
    // Claimed to expire within a minute, so the SDK does not keep it for the next request.
    expect(first.expiration!.getTime()).toBeLessThanOrEqual(Date.now() + 60_000);
    const asked = vault.get.mock.calls.length;
    expect(vault.get.mock.calls.every(c => c[0] === 'upload-a' && c[1] === undefined)).toBe(true);
    await client.config.credentials();
    expect(vault.get.mock.calls.length).toBe(asked + 1);
    sessions.close();
  });

  it('release destroys the client and forgets it', () => {
    const { sessions } = setup();
    const a = sessions.client('upload-a', 'us-east-1');
    const destroy = vi.spyOn(a, 'destroy');
    sessions.release('upload-a');
    expect(destroy).toHaveBeenCalledTimes(1);
    expect(sessions.client('upload-a', 'us-east-1')).not.toBe(a);
    // Releasing an unknown key is harmless.
    sessions.release('upload-unknown');
    sessions.close();
  });

  it('drops the oldest client past maxClients', () => {
    const { sessions } = setup({ maxClients: 2 });
    const a = sessions.client('upload-a', 'us-east-1');
    const b = sessions.client('upload-b', 'us-east-1');
    const destroyA = vi.spyOn(a, 'destroy');
    const destroyB = vi.spyOn(b, 'destroy');
    const c = sessions.client('upload-c', 'us-east-1');
    expect(destroyA).toHaveBeenCalledTimes(1);
    expect(destroyB).not.toHaveBeenCalled();
    expect(sessions.client('upload-b', 'us-east-1')).toBe(b);
    expect(sessions.client('upload-c', 'us-east-1')).toBe(c);
    expect(sessions.client('upload-a', 'us-east-1')).not.toBe(a);
    // Re-creating a drops b, the oldest now (by creation, not by use).
    expect(destroyB).toHaveBeenCalledTimes(1);
    sessions.close();
  });

  it('close destroys every client', () => {
    const { sessions } = setup();
    const destroys = ['a', 'b', 'c'].map(k => vi.spyOn(sessions.client(k, 'us-east-1'), 'destroy'));
    sessions.close();
    for (const d of destroys) expect(d).toHaveBeenCalledTimes(1);
  });
});

describe('S3Sessions.withRenewal', () => {
  it('returns what the call returns, without renewing', async () => {
    const { sessions, vault } = setup();
    await expect(sessions.withRenewal('upload-a', async () => 'done')).resolves.toBe('done');
    expect(vault.get).not.toHaveBeenCalled();
  });

  it('renews past the key the client used after ExpiredToken, then calls again', async () => {
    const { sessions, vault } = setup();
    const client = sessions.client('upload-a', 'us-east-1');
    const fn = vi.fn(async () => {
      const { accessKeyId } = await client.config.credentials();
      if (accessKeyId === 'AKID1') throw s3Error('ExpiredToken', 400);
      return accessKeyId;
    });
    await expect(sessions.withRenewal('upload-a', fn)).resolves.toBe('AKID2');
    expect(fn).toHaveBeenCalledTimes(2);
    expect(vault.renewals()).toEqual([['upload-a', 'AKID1']]);
    sessions.close();
  });

  it("renews on a bare 400 'Unknown' (a HEAD's ExpiredToken has no body)", async () => {
    const { sessions, vault } = setup();
    const fn = vi
      .fn<() => Promise<string>>()
      .mockRejectedValueOnce(s3Error('Unknown', 400, 'UnknownError'))
      .mockResolvedValueOnce('head ok');
    await expect(sessions.withRenewal('upload-a', fn)).resolves.toBe('head ok');
    expect(fn).toHaveBeenCalledTimes(2);
    // No request has resolved credentials yet, so there is no stale key to name.
    expect(vault.get).toHaveBeenCalledTimes(1);
    expect(vault.get).toHaveBeenCalledWith('upload-a', undefined);
  });

  it('gives up after maxRenewals renewals and throws the last error', async () => {
    const { sessions, vault } = setup({ maxRenewals: 3 });
    const expired = s3Error('ExpiredToken', 400);
    const fn = vi.fn(async () => {
      throw expired;
    });
    await expect(sessions.withRenewal('upload-a', fn)).rejects.toBe(expired);
    expect(fn).toHaveBeenCalledTimes(4);
    expect(vault.get).toHaveBeenCalledTimes(3);
  });

  it('defaults to 4 renewals', async () => {
    const { sessions, vault } = setup();
    const fn = vi.fn(async () => {
      throw s3Error('TokenRefreshRequired', 400);
    });
    await expect(sessions.withRenewal('upload-a', fn)).rejects.toThrow();
    expect(fn).toHaveBeenCalledTimes(5);
    expect(vault.get).toHaveBeenCalledTimes(4);
  });

  it.each([
    ['AccessDenied', s3Error('AccessDenied', 403)],
    ['a 400 with a code', s3Error('InvalidArgument', 400)],
    ['a bare 403', s3Error('Unknown', 403)],
    ['a network error', new Error('socket hang up')],
  ])('does not renew on %s', async (_name, err) => {
    const { sessions, vault } = setup();
    const fn = vi.fn(async () => {
      throw err;
    });
    await expect(sessions.withRenewal('upload-a', fn)).rejects.toBe(err);
    expect(fn).toHaveBeenCalledTimes(1);
    expect(vault.get).not.toHaveBeenCalled();
  });
});
