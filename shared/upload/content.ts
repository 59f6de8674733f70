/** Whether Jamf's record of a stored file has the same content as a local file. Pure. */
import type { FileHashes } from '../queues/jobs.ts';

/** The hash fields of a package record (the Pro API's names). */
export interface RecordHashes {
  id: string;
  hashType?: string | null | undefined;
  hashValue?: string | null | undefined;
  md5?: string | null | undefined;
  size?: number | null | undefined;
}

/** True when Jamf's record of the stored file has the same content as the local file. */
export function sameContent(pkg: RecordHashes, local: FileHashes): boolean {
  if (pkg.hashType === 'SHA3_512' && pkg.hashValue)
    return pkg.hashValue.toLowerCase() === local.sha3_512;
  if (pkg.md5) return pkg.md5.toLowerCase() === local.md5;
  if (pkg.hashType === 'MD5' && pkg.hashValue) return pkg.hashValue.toLowerCase() === local.md5;
  return false;
}
