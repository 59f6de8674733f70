/**
 * The simulator's privilege model (test/sim/jamf/privileges.ts) over real HTTP: every
 * privilege granted by default; a revoked one turns exactly the endpoints that need it into
 * Jamf's 403 (ApiError JSON on the Pro API, the HTML page on the Classic API), which the
 * product's client reports as JAMF_FORBIDDEN naming the privilege; grant, restore, the
 * pre-11.20 alias names, validation, and the order against a removed endpoint (404 first).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JamfClient } from '../../shared/jamf/client.ts';
import { authRoutes } from '../sim/jamf/auth.ts';
import { cdpRoutes } from '../sim/jamf/cdp.ts';
import { classicRoutes } from '../sim/jamf/classic.ts';
import { jcdsRoutes } from '../sim/jamf/jcds.ts';
import { packageRoutes } from '../sim/jamf/packages.ts';
import { ENDPOINT_PRIVILEGES, PRIVILEGES } from '../sim/jamf/privileges.ts';
import { uploadRoutes } from '../sim/jamf/upload.ts';
import {
  simApi,
  simToken,
  spawnSimulator,
  type SimApi,
  type SpawnedSimulator,
} from '../helpers/sim.ts';

let sim: SpawnedSimulator;
let api: SimApi;

beforeAll(async () => {
  sim = await spawnSimulator();
  api = simApi(sim.info, await simToken(sim.info));
});

afterAll(async () => {
  await sim?.stop();
});

async function status(path: string, init: Parameters<SimApi>[1] = {}): Promise<number> {
  const res = await api(path, init);
  await res.arrayBuffer();
  return res.status;
}

describe('the privilege table', () => {
  it('names a requirement for every Jamf Pro and Classic API route of the simulator', () => {
    const routes = [
      ...authRoutes,
      ...jcdsRoutes,
      ...packageRoutes,
      ...uploadRoutes,
      ...cdpRoutes,
      ...classicRoutes,
    ].filter(r => r.api === 'pro' || r.api === 'classic');
    const missing = routes
      .map(r => `${r.method} ${r.template}`)
      .filter(key => !(key in ENDPOINT_PRIVILEGES));
    expect(missing).toEqual([]);
    for (const needed of Object.values(ENDPOINT_PRIVILEGES)) {
      for (const p of needed) expect(PRIVILEGES).toContain(p);
    }
  });
});

describe('/__sim/privileges', () => {
  it('grants everything by default', async () => {
    const state = await sim.control.privileges.get();
    expect(state.revoked).toEqual([]);
    expect(state.granted).toEqual(state.all);
    expect(state.all).toContain('Read Jamf Cloud Distribution Service Files');
    expect(await status('/api/v1/packages')).toBe(200);
    expect(await status('/api/v1/jcds/files')).toBe(200);
  });

  it('a revoked privilege answers 403 with Jamf ApiError body on exactly the endpoints that need it', async () => {
    const state = await sim.control.privileges.revoke('Read Packages');
    expect(state.revoked).toEqual(['Read Packages']);
    try {
      const res = await api('/api/v1/packages?page=0&page-size=1');
      expect(res.status).toBe(403);
      expect(res.headers.get('content-type')).toMatch(/application\/json/);
      const body = (await res.json()) as Record<string, unknown>;
      expect(body).toEqual({
        httpStatus: 403,
        errors: [{ code: 'INVALID_PRIVILEGE', description: 'Forbidden', id: '0', field: null }],
      });
      expect(await status('/api/v1/packages/1')).toBe(403);
      // The upload needs Read and Update Packages.
      expect(await status('/api/v1/packages/1/upload', { method: 'POST', body: '' })).toBe(403);
      // The Classic API answers its HTML page.
      const classic = await api('/JSSResource/packages', {
        headers: { Accept: 'application/json' },
      });
      expect(classic.status).toBe(403);
      expect(await classic.text()).toMatch(/<p>Error: Forbidden<\/p>/);
      // Other endpoints are untouched; the version needs no privilege.
      expect(await status('/api/v1/categories')).toBe(200);
      expect(await status('/api/v1/cloud-distribution-point')).toBe(200);
      expect(await status('/api/v1/jcds/files')).toBe(200);
      expect(await status('/api/v1/jamf-pro-version')).toBe(200);

      // The product's client turns it into JAMF_FORBIDDEN naming the privilege.
      const client = new JamfClient({
        baseUrl: sim.info.jamfUrl,
        auth: { kind: 'oauth', id: sim.info.clientId, secret: sim.info.clientSecret },
        retries: 0,
      });
      try {
        const err = await client.listPackages().catch((e: unknown) => e);
        expect(err).toMatchObject({ code: 'JAMF_FORBIDDEN', status: 403 });
        expect((err as Error).message).toContain('"Read Packages"');
      } finally {
        await client.close();
      }
    } finally {
      await sim.control.privileges.restore();
    }
    expect(await status('/api/v1/packages')).toBe(200);
  });

  it('write privileges: Update Packages guards PUT and the upload, not GET', async () => {
    await sim.control.privileges.revoke('Update Packages', 'Create Categories');
    try {
      expect(await status('/api/v1/packages/1', { method: 'PUT', json: {} })).toBe(403);
      expect(await status('/api/v1/packages/1/upload', { method: 'POST', body: '' })).toBe(403);
      expect(await status('/api/v1/categories', { method: 'POST', json: { name: 'X' } })).toBe(403);
      expect(await status('/api/v1/packages')).toBe(200);
      const after = await sim.control.privileges.grant('Update Packages');
      expect(after.revoked).toEqual(['Create Categories']);
      // Granted again: the request gets past the privilege check (404: no package 1).
      expect(await status('/api/v1/packages/1', { method: 'PUT', json: {} })).toBe(404);
    } finally {
      await sim.control.privileges.restore();
    }
  });

  it('accepts the pre-11.20 JCDS names as aliases and guards every JCDS endpoint', async () => {
    const state = await sim.control.privileges.revoke(
      'Read Jamf Content Distribution Server Files',
      'Create Jamf Content Distribution Server Files',
    );
    expect(state.revoked).toEqual([
      'Create Jamf Cloud Distribution Service Files',
      'Read Jamf Cloud Distribution Service Files',
    ]);
    try {
      expect(await status('/api/v1/jcds/files')).toBe(403);
      expect(await status('/api/v1/jcds/files', { method: 'POST' })).toBe(403);
      expect(await status('/api/v1/jcds/renew-credentials', { method: 'POST' })).toBe(403);
      expect(await status('/api/v1/jcds/refresh-inventory', { method: 'POST' })).toBe(403);
    } finally {
      await sim.control.privileges.restore();
    }
    expect(await status('/api/v1/jcds/files')).toBe(200);
  });

  it('refuses an unknown name or field with 400 and changes nothing', async () => {
    const res = await fetch(`${sim.info.controlUrl}/privileges`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ revoke: ['Read Packages', 'Read Everything'] }),
    });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('Read Everything');
    const bad = await fetch(`${sim.info.controlUrl}/privileges`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ remove: ['Read Packages'] }),
    });
    expect(bad.status).toBe(400);
    await bad.arrayBuffer();
    expect((await sim.control.privileges.get()).revoked).toEqual([]);
  });
});

describe('with --no-jcds', () => {
  it('a removed endpoint answers 404 before any privilege check', async () => {
    const noJcds = await spawnSimulator({ jcds: false });
    try {
      await noJcds.control.privileges.revoke('Read Jamf Cloud Distribution Service Files');
      const res = await simApi(noJcds.info, await simToken(noJcds.info))('/api/v1/jcds/files');
      expect(res.status).toBe(404);
      await res.arrayBuffer();
    } finally {
      await noJcds.stop();
    }
  });
});
