/**
 * Redaction for what the dashboard shows (job data, return values, progress). Job data
 * holds no secret by design (credentials live encrypted in the vault), so this is a second
 * line of defence: any key that names a secret is masked at any depth, and every string
 * goes through `redactText` (bearer tokens, presigned URL signatures, key=value secrets).
 */
import { isSecretKey, REDACTED, redactText } from '../../shared/redact.ts';

// The secret key names and text forms are the product's one list (shared/redact.ts).
export { isSecretKey, REDACTED };

/** A redacted deep copy (depth-limited; cycles and exotic objects are cut). */
export function redact(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactText(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth > 12) return '[…]';
  if (Array.isArray(value)) return value.map(v => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    out[k] =
      isSecretKey(k) && v !== null && v !== undefined && v !== '' ? REDACTED : redact(v, depth + 1);
  }
  return out;
}
