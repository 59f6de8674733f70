/**
 * `jcds vault rotate [--json]`: makes JCDS_FLEET_SECRET the fleet's secret, replacing
 * JCDS_FLEET_SECRET_PREVIOUS (shared/fleet-secret.ts rotateFleetSecret): the verifier in
 * Redis is switched, and every vault entry sealed with the previous secret is re-sealed with
 * the new one. Run it once every worker holds both secrets (README "Rotating the fleet
 * secret"); it is idempotent. Prints counts, never a secret.
 */
import type { Command } from 'commander';
import { ConfigError } from '../../../shared/errors.ts';
import type { CliContext } from '../context.ts';
import { emitJson } from '../io.ts';

export function registerVault(program: Command, ctx: CliContext): void {
  const vault = program
    .command('vault')
    .description("the fleet's encrypted credential vault in Redis");
  vault
    .command('rotate')
    .description(
      'make JCDS_FLEET_SECRET the fleet secret in place of JCDS_FLEET_SECRET_PREVIOUS, and re-encrypt the vault',
    )
    .option('--json', 'print NDJSON on stdout')
    .action(async (opts: { json?: boolean }) => {
      const config = await ctx.config();
      if (!config.fleetSecret || !config.fleetSecretPrevious) {
        throw new ConfigError(
          'CONFIG_INVALID',
          'jcds vault rotate needs JCDS_FLEET_SECRET (the new secret) and JCDS_FLEET_SECRET_PREVIOUS (the one the fleet uses now): set both, as on the workers (README "Rotating the fleet secret").',
        );
      }
      const [{ rotateFleetSecret }, { connectProducer }, { vaultKey }] = await Promise.all([
        import('../../../shared/fleet-secret.ts'),
        import('../../../shared/queues/connection.ts'),
        import('../../../shared/vault.ts'),
      ]);
      const redis = await connectProducer(config.redisUrl);
      try {
        const r = await rotateFleetSecret(redis, {
          current: vaultKey(config.fleetSecret),
          previous: vaultKey(config.fleetSecretPrevious),
        });
        if (opts.json) {
          emitJson(ctx.io, { event: 'rotated', ...r });
          return;
        }
        const what = {
          rotated:
            'The fleet secret is now JCDS_FLEET_SECRET (the verifier in Redis was switched).',
          'already-current':
            'The fleet secret was already JCDS_FLEET_SECRET: the vault was swept again.',
          written: 'Redis had no verifier yet: JCDS_FLEET_SECRET is now the fleet secret.',
        }[r.verifier];
        ctx.io.err(
          `${what}\nVault entries re-encrypted: ${r.resealed}; already under the new secret: ${r.current}; left to expire or be renewed: ${r.skipped} (${r.sweeps} sweeps).\n` +
            'Workers started with only the old secret are now refused; remove JCDS_FLEET_SECRET_PREVIOUS from the workers at their next restart.\n',
        );
      } finally {
        redis.disconnect();
      }
    });
}
