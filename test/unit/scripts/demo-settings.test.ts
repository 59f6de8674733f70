/**
 * The demo's block of settings for another shell: every variable a joining worker needs,
 * shell-quoted, and never a secret that came from the user's environment.
 */
import { describe, expect, it } from 'vitest';
import { redisUrlForDisplay, settingsBlock, shellQuote } from '../../../scripts/demo-settings.ts';

const env = {
  REDIS_URL: 'redis://127.0.0.1:46351',
  JAMF_URL: 'http://127.0.0.1:34865',
  JAMF_CLIENT_ID: 'jcds-sim-client',
  JAMF_CLIENT_SECRET: 'jcds-sim-client-secret',
  AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:42325',
  JCDS_FLEET_SECRET: 'jcds-demo-secret-not-for-production',
  JCDS_SPLIT_THRESHOLD: '16MiB',
  JCDS_PART_SIZE: '8MiB',
};

describe('demo settings block', () => {
  it('lists every variable a worker needs, ready to paste', () => {
    const block = settingsBlock(env, { secretFromEnv: false });
    for (const [k, v] of Object.entries(env)) expect(block).toContain(`  export ${k}='${v}'`);
    expect(block.trimEnd().split('\n').at(-1)).toContain('node bin/jcds.js worker');
  });

  it('prints a placeholder for a fleet secret or a Redis password from the environment', () => {
    const block = settingsBlock(
      {
        ...env,
        JCDS_FLEET_SECRET: 'mine-0123456789abcdef',
        REDIS_URL: 'redis://:hunter2@r:6379/0',
      },
      { secretFromEnv: true },
    );
    expect(block).not.toContain('mine-0123456789abcdef');
    expect(block).not.toContain('hunter2');
    expect(block).toContain(
      `export JCDS_FLEET_SECRET="<the JCDS_FLEET_SECRET set in the demo's shell>"`,
    );
    expect(redisUrlForDisplay('redis://:hunter2@r:6379/0')).toBe(
      '"redis://:<your Redis password>@r:6379/0"',
    );
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
  });
});
