-- +goose Up
-- The organisation chart and its sync bookkeeping (package directory).
-- Times are Unix seconds. status is 'active', 'disabled' or 'left'; nothing
-- here is ever deleted by a sync: people who leave keep their row (and
-- their mailbox, which is the mail core's) with status 'left' and left_at.
CREATE TABLE dir_departments (
	id {{.ID}},
	parent_id BIGINT REFERENCES dir_departments(id),
	name TEXT NOT NULL,
	sort_order BIGINT NOT NULL DEFAULT 0,
	status TEXT NOT NULL DEFAULT 'active',
	updated_at BIGINT NOT NULL
);
CREATE INDEX dir_departments_parent ON dir_departments(parent_id);

-- id is the stable govhub id of a person: never reused, never renumbered.
-- pinyin_full and pinyin_initials are derived from display_name by the
-- package (go-pinyin); search_text is the lowercased concatenation the
-- address book searches; sort_dept is the display order of the person's
-- first department, so search results sort without a join.
CREATE TABLE dir_people (
	id {{.ID}},
	display_name TEXT NOT NULL,
	pinyin_full TEXT NOT NULL DEFAULT '',
	pinyin_initials TEXT NOT NULL DEFAULT '',
	title TEXT NOT NULL DEFAULT '',
	rank TEXT NOT NULL DEFAULT '',
	office_phone TEXT NOT NULL DEFAULT '',
	mobile TEXT NOT NULL DEFAULT '',
	mail TEXT NOT NULL DEFAULT '',
	employee_no TEXT NOT NULL DEFAULT '',
	status TEXT NOT NULL DEFAULT 'active',
	left_at BIGINT NOT NULL DEFAULT 0,
	sort_dept BIGINT NOT NULL DEFAULT 0,
	search_text TEXT NOT NULL DEFAULT '',
	updated_at BIGINT NOT NULL
);
CREATE INDEX dir_people_mail ON dir_people(mail);
CREATE INDEX dir_people_employee_no ON dir_people(employee_no);
CREATE INDEX dir_people_sort ON dir_people(sort_dept, pinyin_full);

CREATE TABLE dir_memberships (
	person_id BIGINT NOT NULL REFERENCES dir_people(id),
	dept_id BIGINT NOT NULL REFERENCES dir_departments(id),
	sort_order BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (person_id, dept_id)
);
CREATE INDEX dir_memberships_dept ON dir_memberships(dept_id);

-- One anchor per object and peer: the immutable id the peer gives it.
-- kind 1 department, 2 person (directory.EntryKind). last_values is the
-- JSON snapshot of the peer's values and ours after the last run that saw
-- the object: "changed since the last run" on either side is measured
-- against it.
CREATE TABLE dir_anchors (
	kind SMALLINT NOT NULL,
	object_id BIGINT NOT NULL,
	peer TEXT NOT NULL,
	anchor TEXT NOT NULL,
	last_values TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (peer, kind, anchor)
);
CREATE UNIQUE INDEX dir_anchors_object ON dir_anchors(peer, kind, object_id);

CREATE TABLE dir_sync_state (
	peer TEXT PRIMARY KEY,
	cursor TEXT NOT NULL DEFAULT '',
	last_run_id BIGINT NOT NULL DEFAULT 0,
	last_run_at BIGINT NOT NULL DEFAULT 0,
	last_full_at BIGINT NOT NULL DEFAULT 0
);

-- kind 'full' or 'delta'; status 'running', 'ok', 'failed'.
CREATE TABLE dir_runs (
	id {{.ID}},
	peer TEXT NOT NULL,
	kind TEXT NOT NULL,
	dry_run SMALLINT NOT NULL DEFAULT 0,
	started_at BIGINT NOT NULL,
	finished_at BIGINT NOT NULL DEFAULT 0,
	status TEXT NOT NULL DEFAULT 'running',
	seen BIGINT NOT NULL DEFAULT 0,
	created BIGINT NOT NULL DEFAULT 0,
	updated BIGINT NOT NULL DEFAULT 0,
	removed BIGINT NOT NULL DEFAULT 0,
	written_back BIGINT NOT NULL DEFAULT 0,
	errors BIGINT NOT NULL DEFAULT 0,
	conflicts BIGINT NOT NULL DEFAULT 0,
	error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX dir_runs_peer ON dir_runs(peer, id);

-- One row per object a run changed or could not take: action is what was
-- (or, in a dry run, would be) done, target the side changed ('govhub' or
-- the peer's name, for write-back), result 'ok' or 'error'.
CREATE TABLE dir_run_objects (
	run_id BIGINT NOT NULL REFERENCES dir_runs(id),
	seq BIGINT NOT NULL,
	kind SMALLINT NOT NULL,
	object_id BIGINT NOT NULL DEFAULT 0,
	anchor TEXT NOT NULL DEFAULT '',
	source TEXT NOT NULL DEFAULT '',
	action TEXT NOT NULL,
	target TEXT NOT NULL,
	fields TEXT NOT NULL DEFAULT '',
	result TEXT NOT NULL,
	error TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (run_id, seq)
);

CREATE TABLE dir_conflicts (
	id {{.ID}},
	run_id BIGINT NOT NULL,
	kind SMALLINT NOT NULL,
	object_id BIGINT NOT NULL,
	peer TEXT NOT NULL,
	field TEXT NOT NULL,
	ours TEXT NOT NULL,
	theirs TEXT NOT NULL,
	winner TEXT NOT NULL,
	at BIGINT NOT NULL
);
CREATE INDEX dir_conflicts_object ON dir_conflicts(object_id);

-- One row: bumped by every transaction that changes people or
-- departments, so each node's in-memory address-book index knows when to
-- reload.
CREATE TABLE dir_generation (
	id SMALLINT PRIMARY KEY,
	gen BIGINT NOT NULL
);
INSERT INTO dir_generation (id, gen) VALUES (1, 1);

-- Cron schedules per peer and kind ('full' or 'delta'). last_slot is the
-- Unix time of the last fire time a node claimed (or when the schedule was
-- set): a node runs a slot only if it moves last_slot forward, so several
-- nodes never run the same slot twice.
CREATE TABLE dir_schedules (
	peer TEXT NOT NULL,
	kind TEXT NOT NULL,
	spec TEXT NOT NULL,
	paused SMALLINT NOT NULL DEFAULT 0,
	last_slot BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (peer, kind)
);

-- +goose Down
DROP TABLE dir_schedules;
DROP TABLE dir_generation;
DROP TABLE dir_conflicts;
DROP TABLE dir_run_objects;
DROP TABLE dir_runs;
DROP TABLE dir_sync_state;
DROP TABLE dir_anchors;
DROP TABLE dir_memberships;
DROP TABLE dir_people;
DROP TABLE dir_departments;
