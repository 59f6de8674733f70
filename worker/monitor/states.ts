/** The job states the monitor counts: one list for the CLI and the monitor. */
export { COUNT_STATES } from '../../shared/queues/names.ts';
