/** The job states the monitor counts (BullMQ v6 has no `paused` state). */
export const COUNT_STATES = [
  'waiting',
  'prioritized',
  'active',
  'waiting-children',
  'delayed',
  'completed',
  'failed',
] as const;
