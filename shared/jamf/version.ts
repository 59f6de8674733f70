/** Jamf Pro version strings (`11.24.0-t1718802727`, `10.48.1`) and comparisons. */

export interface JamfVersion {
  major: number;
  minor: number;
  patch: number;
}

/** Parses the leading `major.minor[.patch]`; undefined when there is none. */
export function parseJamfVersion(text: string): JamfVersion | undefined {
  const m = /^\s*(\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  if (!m) return undefined;
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3] ?? 0) };
}

/** True when `version` is at least `major.minor[.patch]`. */
export function versionAtLeast(
  version: JamfVersion,
  major: number,
  minor: number,
  patch = 0,
): boolean {
  if (version.major !== major) return version.major > major;
  if (version.minor !== minor) return version.minor > minor;
  return version.patch >= patch;
}
