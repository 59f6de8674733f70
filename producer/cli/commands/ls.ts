/**
 * `jcds ls [--json]`: the files in JCDS and the package records in Jamf Pro side by side,
 * joined on the file name (name, size, SHA-256, SHA3-512, package id). Needs the Jamf variables.
 * A server without the JCDS v1 endpoints (404) lists the packages alone. The table is the
 * command's output (stdout: `jcds ls > files.txt`); the count line is a note (stderr).
 */
import type { Command } from 'commander';
import { errorCode } from '../../../shared/errors.ts';
import type { JamfPackage, JcdsFile } from '../../../shared/jamf/index.ts';
import type { CliContext } from '../context.ts';
import { formatBytes, table } from '../format.ts';
import { emitJson } from '../io.ts';

export interface LsRow {
  fileName: string;
  size: number | null;
  /** The record's `sha256` (Jamf computes it; uploads are verified against it). */
  sha256: string | null;
  sha3: string | null;
  md5: string | null;
  packageId: string | null;
  packageName: string | null;
  inJcds: boolean;
}

/** Joins JCDS files and package records on fileName, sorted by name. */
export function joinFiles(files: JcdsFile[] | undefined, packages: JamfPackage[]): LsRow[] {
  const rows = new Map<string, LsRow>();
  for (const f of files ?? []) {
    rows.set(f.fileName, {
      fileName: f.fileName,
      size: f.length,
      sha256: null,
      sha3: f.sha3 ?? null,
      md5: f.md5 ?? null,
      packageId: null,
      packageName: null,
      inJcds: true,
    });
  }
  for (const p of packages) {
    const row = rows.get(p.fileName);
    const size = p.size === null || p.size === undefined ? null : Number(p.size);
    const sha3 = p.sha3512 ?? (p.hashType === 'SHA3_512' ? p.hashValue : undefined) ?? null;
    if (row) {
      row.packageId = String(p.id);
      row.packageName = p.packageName;
      row.sha256 ??= p.sha256 ?? null;
      row.sha3 ??= sha3;
      row.md5 ??= p.md5 ?? null;
    } else {
      rows.set(p.fileName, {
        fileName: p.fileName,
        size: size !== null && Number.isFinite(size) ? size : null,
        sha256: p.sha256 ?? null,
        sha3,
        md5: p.md5 ?? null,
        packageId: String(p.id),
        packageName: p.packageName,
        inJcds: false,
      });
    }
  }
  return [...rows.values()].sort((a, b) => a.fileName.localeCompare(b.fileName));
}

export function registerLs(program: Command, ctx: CliContext): void {
  program
    .command('ls')
    .description('list JCDS files and Jamf Pro packages side by side (needs the Jamf variables)')
    .option('--json', 'print one JSON object per file, then a summary, on stdout')
    .action(async (opts: { json?: boolean }) => {
      const config = await ctx.config({ requireJamf: true });
      const { JamfClient } = await import('../../../shared/jamf/index.ts');
      const client = new JamfClient({
        baseUrl: config.jamfUrl!,
        auth: config.jamfAuth!,
        retries: 2,
      });
      let files: JcdsFile[] | undefined;
      let packages: JamfPackage[];
      try {
        [files, packages] = await Promise.all([
          client.listJcdsFiles().catch((err: unknown) => {
            if (errorCode(err) === 'JAMF_NOT_FOUND') return undefined;
            throw err;
          }),
          client.listPackages(),
        ]);
      } finally {
        await client.close().catch(() => undefined);
      }
      const rows = joinFiles(files, packages);
      const orphans = rows.filter(r => r.inJcds && r.packageId === null).length;
      const missing = files ? rows.filter(r => !r.inJcds).length : 0;
      if (opts.json) {
        for (const r of rows) emitJson(ctx.io, { event: 'file', ...r });
        emitJson(ctx.io, {
          event: 'summary',
          files: files?.length ?? null,
          packages: packages.length,
          jcds: files !== undefined,
          withoutPackage: orphans,
          withoutFile: missing,
        });
        return;
      }
      const { io } = ctx;
      io.out(
        table(
          ['NAME', 'SIZE', 'SHA-256', 'SHA3-512', 'PACKAGE', 'PACKAGE NAME'],
          rows.map(r => [
            r.fileName,
            r.size === null ? '-' : formatBytes(r.size),
            r.sha256 ? `${r.sha256.slice(0, 16)}…` : '-',
            r.sha3 ? `${r.sha3.slice(0, 16)}…` : '-',
            r.packageId ?? (r.inJcds ? '(none)' : '-'),
            r.packageName ?? '',
          ]),
          { right: [1], ...(io.outIsTTY ? { fit: io.columns - 1 } : {}) },
        ),
      );
      io.err(
        `${rows.length} name(s): ${files ? `${files.length} JCDS file(s)` : 'JCDS v1 endpoints not available on this server'}, ${packages.length} package(s)` +
          `${orphans ? `; ${orphans} file(s) without a package record` : ''}${missing && files ? `; ${missing} package(s) without a JCDS file` : ''}\n`,
      );
    });
}
