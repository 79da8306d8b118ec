-- Reserved for preferences (issue 17), built on another branch at the same time as Web Push:
-- migration numbers must run without a gap, so this empty one holds the place. The merge
-- replaces it with preferences' own 0006.
SELECT 1;
