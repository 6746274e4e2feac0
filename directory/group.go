package directory

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Groups as govhub keeps them (tables dir_groups and dir_group_members,
// migration 00009). The sync engine writes them; the address book and the
// mail core's distribution addresses read them. Only direct members are
// stored; nested groups are flattened when read (GroupMemberMails,
// GroupPeople), so a cycle a peer holds (A in B, B in A) is stored as it
// is and read without looping.

// GroupRecord is a group as govhub keeps it. ID is the stable govhub id.
type GroupRecord struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Mail        string `json:"mail,omitempty"`
	Status      string `json:"status"`
	// People and Subgroups are the direct members (govhub ids), sorted.
	People    []int64 `json:"people,omitempty"`
	Subgroups []int64 `json:"subgroups,omitempty"`
}

// Member kinds in dir_group_members.
const (
	memberPerson = int(KindPerson)
	memberGroup  = int(KindGroup)
)

func groupSearchText(g *GroupRecord) string {
	full, ini := Pinyin(g.Name)
	return strings.ToLower(strings.Join([]string{g.Name, full, ini, g.Description, g.Mail}, "\x01"))
}

type groupRow struct {
	ID          int64  `db:"id"`
	Name        string `db:"name"`
	Description string `db:"description"`
	Mail        string `db:"mail"`
	Status      string `db:"status"`
}

const groupCols = `id, name, description, mail, status`

func (r groupRow) record() *GroupRecord {
	return &GroupRecord{ID: r.ID, Name: r.Name, Description: r.Description, Mail: r.Mail, Status: r.Status}
}

// addMembers fills the direct members of the groups in m from one query.
func (s *Store) addMembers(ctx context.Context, m map[int64]*GroupRecord, where string, args ...any) error {
	rows, err := s.db.X.QueryContext(ctx, s.db.Rebind(`SELECT group_id, member_kind, member_id FROM dir_group_members`+where+` ORDER BY group_id, member_kind, member_id`), args...)
	if err != nil {
		return fmt.Errorf("directory: group members: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var gid, mid int64
		var kind int
		if err := rows.Scan(&gid, &kind, &mid); err != nil {
			return err
		}
		g := m[gid]
		if g == nil {
			continue
		}
		if kind == memberGroup {
			g.Subgroups = append(g.Subgroups, mid)
		} else {
			g.People = append(g.People, mid)
		}
	}
	return rows.Err()
}

// allGroups loads every group with its direct members (the engine's
// working set).
func (s *Store) allGroups(ctx context.Context) (map[int64]*GroupRecord, error) {
	var rows []groupRow
	if err := s.db.X.SelectContext(ctx, &rows, `SELECT `+groupCols+` FROM dir_groups`); err != nil {
		return nil, fmt.Errorf("directory: load groups: %w", err)
	}
	out := make(map[int64]*GroupRecord, len(rows))
	for _, r := range rows {
		out[r.ID] = r.record()
	}
	if len(out) == 0 {
		return out, nil
	}
	return out, s.addMembers(ctx, out, "")
}

// Group returns one group with its direct members, whatever its status.
func (s *Store) Group(ctx context.Context, id int64) (*GroupRecord, error) {
	var r groupRow
	err := s.db.X.GetContext(ctx, &r, s.db.Rebind(`SELECT `+groupCols+` FROM dir_groups WHERE id = ?`), id)
	if isNoRows(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("directory: group %d: %w", id, err)
	}
	g := r.record()
	return g, s.addMembers(ctx, map[int64]*GroupRecord{id: g}, ` WHERE group_id = ?`, id)
}

// GroupByMail returns the active group whose own mail address is addr
// (case-insensitive: the engine stores group addresses lower-cased),
// ErrNotFound when none is.
func (s *Store) GroupByMail(ctx context.Context, addr string) (*GroupRecord, error) {
	var ids []int64
	if err := s.db.X.SelectContext(ctx, &ids, s.db.Rebind(`SELECT id FROM dir_groups WHERE mail = ? AND status = 'active' ORDER BY id LIMIT 1`), strings.ToLower(addr)); err != nil {
		return nil, fmt.Errorf("directory: group by mail: %w", err)
	}
	if len(ids) == 0 {
		return nil, ErrNotFound
	}
	return s.Group(ctx, ids[0])
}

// maxGroupSort bounds how many matching groups SearchGroups sorts.
const maxGroupSort = 5000

// SearchGroups lists the groups that have not left whose name, its
// pinyin (full or initials), description or mail contain every word of
// query ("" for all), in pinyin order of the name; limit is capped at
// MaxSearchLimit.
func (s *Store) SearchGroups(ctx context.Context, query string, limit int) ([]GroupRecord, error) {
	if limit <= 0 || limit > MaxSearchLimit {
		limit = MaxSearchLimit
	}
	where := []string{`status <> 'left'`}
	var args []any
	for _, w := range strings.Fields(strings.ToLower(query)) {
		where = append(where, `search_text LIKE ? ESCAPE '\'`)
		args = append(args, "%"+likeEscape(w)+"%")
	}
	// Sorted by pinyin here, as people are (Chinese names in code-point
	// order read as random): an organisation has hundreds of groups, so
	// the matches are read whole up to a bound and cut after sorting.
	args = append(args, maxGroupSort)
	var rows []groupRow
	q := `SELECT ` + groupCols + ` FROM dir_groups WHERE ` + strings.Join(where, " AND ") + ` ORDER BY name, id LIMIT ?`
	if err := s.db.X.SelectContext(ctx, &rows, s.db.Rebind(q), args...); err != nil {
		return nil, fmt.Errorf("directory: search groups: %w", err)
	}
	out := make([]GroupRecord, len(rows))
	keys := make([]string, len(rows))
	for i, r := range rows {
		out[i] = *r.record()
		keys[i], _ = Pinyin(out[i].Name)
	}
	idx := make([]int, len(out))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return keys[idx[a]] < keys[idx[b]] })
	sorted := make([]GroupRecord, 0, min(limit, len(out)))
	for _, i := range idx[:min(limit, len(idx))] {
		sorted = append(sorted, out[i])
	}
	return sorted, nil
}

// nestedCTE is the set of group ids reachable from the group bound to its
// one parameter through active nested groups. UNION (not UNION ALL)
// drops ids already in the set, so a cycle ends the recursion.
const nestedCTE = `WITH RECURSIVE sub(id) AS (SELECT id FROM dir_groups WHERE id = ?
	UNION SELECT m.member_id FROM dir_group_members m JOIN sub ON m.group_id = sub.id
	JOIN dir_groups g ON g.id = m.member_id WHERE m.member_kind = 3 AND g.status = 'active') `

// GroupPeople returns the people of group id, nested groups flattened
// (each person once, cycles harmless), who have not left, in pinyin order.
func (s *Store) GroupPeople(ctx context.Context, id int64) ([]*PersonRecord, error) {
	q := nestedCTE + `SELECT ` + prefixed("p.", personCols) + ` FROM dir_people p WHERE p.status <> 'left' AND p.id IN
		(SELECT m.member_id FROM dir_group_members m WHERE m.member_kind = 2 AND m.group_id IN (SELECT id FROM sub))
		ORDER BY p.pinyin_full, p.id`
	var rows []personRow
	if err := s.db.X.SelectContext(ctx, &rows, s.db.Rebind(q), id); err != nil {
		return nil, fmt.Errorf("directory: people of group %d: %w", id, err)
	}
	out := make([]*PersonRecord, len(rows))
	for i, r := range rows {
		out[i] = r.record()
	}
	return out, nil
}

// GroupMemberMails returns the mail addresses of the people of group id,
// nested groups flattened with cycle protection, who still receive mail
// (active and disabled, not left), each once, sorted: the expansion of the
// group's distribution address at delivery time. A group that is not
// active has no members.
func (s *Store) GroupMemberMails(ctx context.Context, id int64) ([]string, error) {
	g, err := s.Group(ctx, id)
	if err != nil {
		return nil, err
	}
	if g.Status != StatusActive {
		return []string{}, nil
	}
	q := nestedCTE + `SELECT DISTINCT p.mail FROM dir_people p WHERE p.mail <> '' AND p.status <> 'left' AND p.id IN
		(SELECT m.member_id FROM dir_group_members m WHERE m.member_kind = 2 AND m.group_id IN (SELECT id FROM sub))
		ORDER BY p.mail`
	out := []string{}
	if err := s.db.X.SelectContext(ctx, &out, s.db.Rebind(q), id); err != nil {
		return nil, fmt.Errorf("directory: mails of group %d: %w", id, err)
	}
	return out, nil
}

// insertGroup, updateGroup and setGroupMembers write the engine's plan.
func insertGroup(ctx context.Context, tx *ptx, g *GroupRecord, now time.Time) (int64, error) {
	id, err := tx.queryID(ctx, `INSERT INTO dir_groups (name, description, mail, status, search_text, updated_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
		g.Name, g.Description, g.Mail, g.Status, groupSearchText(g), now.Unix())
	if err != nil {
		return 0, fmt.Errorf("directory: insert group: %w", err)
	}
	return id, nil
}

func updateGroup(ctx context.Context, tx *ptx, g *GroupRecord, now time.Time) error {
	err := tx.exec(ctx, `UPDATE dir_groups SET name = ?, description = ?, mail = ?, status = ?, search_text = ?, updated_at = ? WHERE id = ?`,
		g.Name, g.Description, g.Mail, g.Status, groupSearchText(g), now.Unix(), g.ID)
	if err != nil {
		return fmt.Errorf("directory: update group %d: %w", g.ID, err)
	}
	return nil
}

func setGroupMembers(ctx context.Context, tx *ptx, id int64, people, groups []int64) error {
	if err := tx.exec(ctx, `DELETE FROM dir_group_members WHERE group_id = ?`, id); err != nil {
		return fmt.Errorf("directory: members of group %d: %w", id, err)
	}
	add := func(kind int, ids []int64) error {
		seen := map[int64]bool{}
		for _, m := range ids {
			if seen[m] || m <= 0 {
				continue
			}
			seen[m] = true
			if err := tx.exec(ctx, `INSERT INTO dir_group_members (group_id, member_kind, member_id) VALUES (?, ?, ?)`, id, kind, m); err != nil {
				return fmt.Errorf("directory: members of group %d: %w", id, err)
			}
		}
		return nil
	}
	if err := add(memberPerson, people); err != nil {
		return err
	}
	return add(memberGroup, groups)
}

func sortedIDs(ids []int64) []int64 {
	out := append([]int64(nil), ids...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
