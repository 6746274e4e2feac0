-- +goose Up
-- Groups of the organisation chart (package directory): named sets of
-- people and, nested, of other groups. Their anchors per peer live in
-- dir_anchors with kind 3 (directory.KindGroup). status is 'active',
-- 'disabled' or 'left' (gone from the peer that owns it); a sync never
-- deletes a row.
CREATE TABLE dir_groups (
	id {{.ID}},
	name TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	mail TEXT NOT NULL DEFAULT '',
	status TEXT NOT NULL DEFAULT 'active',
	search_text TEXT NOT NULL DEFAULT '',
	updated_at BIGINT NOT NULL
);
CREATE INDEX dir_groups_mail ON dir_groups(mail);

-- Direct members only: member_kind 2 is a person (dir_people.id), 3 a
-- nested group (dir_groups.id). Nested groups are flattened when read,
-- with cycle protection, so a cycle in a peer is stored as it is.
CREATE TABLE dir_group_members (
	group_id BIGINT NOT NULL REFERENCES dir_groups(id),
	member_kind SMALLINT NOT NULL,
	member_id BIGINT NOT NULL,
	PRIMARY KEY (group_id, member_kind, member_id)
);
CREATE INDEX dir_group_members_member ON dir_group_members(member_kind, member_id);

-- People a run created in a writable peer (push).
ALTER TABLE dir_runs ADD COLUMN created_in_peer BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE dir_runs DROP COLUMN created_in_peer;
DROP TABLE dir_group_members;
DROP TABLE dir_groups;
