-- The tick's statements are small lookups through indexes, but the planner cannot know how few
-- resources were written since the watermark (a value read inside the statement), and its
-- cost estimate would start JIT compilation: hundreds of milliseconds for a millisecond's
-- work. Off for this transaction only.
SET LOCAL jit = off
