/**
 * Section 6: the same direct clients against OpenStack Swift's s3api (a real S3
 * implementation, test/helpers/swift.ts) as a second column, to tell the simulator's speed
 * from the clients'. The fleet itself cannot point at Swift: its S3 credentials come from
 * Jamf (the simulator's POST /api/v1/jcds/files), which Swift does not know.
 */
import { join } from 'node:path';
import { rmSync, writeFileSync } from 'node:fs';
import { staticTarget } from '../lib/clients.ts';
import type { BenchEnv } from '../lib/env.ts';
import { log } from '../lib/measure.ts';
import type { Plan, TransferSection } from '../types.ts';
import { requireSwift, startSwift } from '../../helpers/swift.ts';
import {
  ceilingNotes,
  ceilingScenarios,
  putGetSource,
  removeGetSource,
  splitParts,
} from './ceiling.ts';
import { directDownloadScenarios } from './download.ts';
import { directUploadScenarios, fleetSettings, interleave } from './upload.ts';

export async function runSwift(
  env: BenchEnv,
  plan: Plan,
  path: string,
): Promise<TransferSection | { skipped: string }> {
  try {
    requireSwift();
  } catch (err) {
    log(`  swift skipped: ${(err as Error).message}`);
    return { skipped: (err as Error).message };
  }
  const swift = await startSwift();
  try {
    const awsConfigFile = join(env.dir, 'aws-config-swift');
    writeFileSync(awsConfigFile, '[default]\n');
    const t = await staticTarget({
      label: 'swift',
      endpoint: swift.endpoint,
      accessKeyId: swift.accessKeyId,
      secretAccessKey: swift.secretAccessKey,
      region: swift.region,
      bucket: 'bench',
      awsConfigFile,
    });
    const { partSize, partConcurrency } = fleetSettings();
    await putGetSource(t, path, plan.size, 'swift');
    const partsDir = join(env.dir, 'swift-parts');
    const parts = await splitParts(path, partsDir, partSize);
    const key = `bench-swift-get-source.bin`;
    const scenarios = [
      ...ceilingScenarios(t, path, parts, plan.size, 'swift', partConcurrency),
      ...directUploadScenarios(t, path, plan.size, 'swift', partSize, partConcurrency),
      ...directDownloadScenarios(t, key, () => t.presignGet(key), env.dir, plan.size).map(s => ({
        ...s,
        name: `get-${s.name}`,
      })),
    ];
    const samples = await interleave(scenarios, plan.runs, plan.size, undefined);
    await removeGetSource(t, 'swift');
    rmSync(partsDir, { recursive: true, force: true });
    t.s3.destroy();
    return {
      size: plan.size,
      settings: {
        endpoint: 'Swift 2.30 s3api (Debian), one proxy worker',
        partSize,
        partConcurrency,
      },
      samples,
      ratios: {},
      notes: [
        'same clients and settings as sections 1, 2 and 5, against Swift instead of the simulator',
        'get-* are downloads (to a file); curl-* as in the ceiling section:',
        ...ceilingNotes(partSize, partConcurrency),
      ],
    };
  } finally {
    await swift.stop();
  }
}
