/**
 * The demo's "paste this into another shell" block: the variables a worker started there
 * (`node bin/jcds.js worker`) needs to join the demo's fleet. Only the simulator's own
 * credentials and the demo's own secret are printed; a JCDS_FLEET_SECRET that came from
 * the environment, and a password in a REDIS_URL, are printed as placeholders.
 */

/** A shell-quoted value ('...'). */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** REDIS_URL for the block: a password in it becomes a placeholder. */
export function redisUrlForDisplay(url: string): string {
  try {
    const u = new URL(url);
    if (!u.password) return shellQuote(url);
    u.password = 'PASSWORD';
    return `"${u.toString().replace(':PASSWORD@', ':<your Redis password>@')}"`;
  } catch {
    return shellQuote(url);
  }
}

export const SETTINGS = [
  'REDIS_URL',
  'JAMF_URL',
  'JAMF_CLIENT_ID',
  'JAMF_CLIENT_SECRET',
  'AWS_ENDPOINT_URL_S3',
  'JCDS_FLEET_SECRET',
  'JCDS_SPLIT_THRESHOLD',
  'JCDS_PART_SIZE',
] as const;

/**
 * `  export NAME='value'` lines for SETTINGS, then the command that starts a worker.
 * `secretFromEnv`: JCDS_FLEET_SECRET was set by the user (never print it).
 */
export function settingsBlock(
  env: Record<string, string | undefined>,
  options: { secretFromEnv: boolean },
): string {
  const value = (name: (typeof SETTINGS)[number]): string => {
    const v = env[name] ?? '';
    if (name === 'REDIS_URL') return redisUrlForDisplay(v);
    if (name === 'JCDS_FLEET_SECRET' && options.secretFromEnv)
      return `"<the JCDS_FLEET_SECRET set in the demo's shell>"`;
    return shellQuote(v);
  };
  return [
    ...SETTINGS.map(name => `  export ${name}=${value(name)}`),
    '  node bin/jcds.js worker        # joins the fleet; Ctrl-C drains it',
  ].join('\n');
}
