-- synod store schema v3: what a run executes (workflow source or plan, and its unredacted
-- inputs), so that an orchestrator restarted after a crash can resume it. Internal: never
-- returned by the run APIs or written to events.
ALTER TABLE runs ADD COLUMN spec TEXT;
