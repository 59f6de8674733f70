/** The Jamf Pro API client: import from here. */
export { JamfClient, type JamfClientOptions } from './client.ts';
export {
  JamfApiError,
  parseJamfErrorBody,
  formatJamfErrors,
  type JamfErrorItem,
} from './errors.ts';
export { rsql } from './rsql.ts';
export { encodePathSegment } from './http.ts';
export { parseJamfVersion, versionAtLeast, type JamfVersion } from './version.ts';
export type { CallOptions } from './jcds-api.ts';
export type { ListPackagesOptions, UploadOptions, UploadResult } from './packages-api.ts';
export type {
  Capabilities,
  ClassicNewPackage,
  ClassicPackage,
  ClassicPackageRef,
  Created,
  JamfPackage,
  JcdsCredentials,
  JcdsFile,
  NewPackage,
} from './types.ts';
