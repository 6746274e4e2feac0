package directory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// DeptRef names a department a person belongs to.
type DeptRef struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// PersonView is a person as the address book shows them: no employee
// number, no anchors.
type PersonView struct {
	ID          int64     `json:"id"`
	DisplayName string    `json:"display_name"`
	Pinyin      string    `json:"pinyin"`
	Title       string    `json:"title,omitempty"`
	Rank        string    `json:"rank,omitempty"`
	Departments []DeptRef `json:"departments"`
	OfficePhone string    `json:"office_phone,omitempty"`
	Mobile      string    `json:"mobile,omitempty"`
	Mail        string    `json:"mail,omitempty"`
	Status      string    `json:"status"`
	// ComposeURL opens webmail's compose page addressed to this person
	// (the affairs link's "contact" button points here).
	ComposeURL string `json:"compose_url,omitempty"`
}

// DeptNode is one node of the department tree.
type DeptNode struct {
	Dept
	Children []*DeptNode `json:"children"`
}

// ComposeLink is the webmail deep link that writes to person id.
func ComposeLink(id int64) string {
	return "/compose?to=" + url.QueryEscape(strconv.FormatInt(id, 10))
}

// MaxSearchLimit bounds one address-book answer.
const MaxSearchLimit = 200

// likeEscape makes s a literal inside a LIKE pattern (ESCAPE '\').
func likeEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

// Search finds people who have not left by display name, pinyin (full
// "zhangsan" or initials "zs"), title, office phone, mobile or mail:
// every word of query must occur (case-insensitively) in one of them.
// Results are ordered by department (tree order) then pinyin; limit is
// capped at MaxSearchLimit.
func (s *Store) Search(ctx context.Context, query string, limit int) ([]PersonView, error) {
	if limit <= 0 || limit > MaxSearchLimit {
		limit = MaxSearchLimit
	}
	return s.searchIndexed(ctx, query, limit)
}

// People lists the people of department deptID (not sub-departments)
// matching query ("" for all), by membership order then pinyin.
func (s *Store) People(ctx context.Context, deptID int64, query string, limit int) ([]PersonView, error) {
	return s.search(ctx, query, deptID, limit)
}

func (s *Store) search(ctx context.Context, query string, deptID int64, limit int) ([]PersonView, error) {
	if limit <= 0 || limit > MaxSearchLimit {
		limit = MaxSearchLimit
	}
	var where []string
	var args []any
	var from = `dir_people p`
	order := `p.sort_dept, p.pinyin_full, p.id`
	if deptID != 0 {
		from = `dir_people p JOIN dir_memberships m ON m.person_id = p.id AND m.dept_id = ?`
		args = append(args, deptID)
		order = `m.sort_order, p.pinyin_full, p.id`
	}
	where = append(where, `p.status <> 'left'`)
	for _, w := range strings.Fields(strings.ToLower(query)) {
		where = append(where, `p.search_text LIKE ? ESCAPE '\'`)
		args = append(args, "%"+likeEscape(w)+"%")
	}
	args = append(args, limit)
	q := `SELECT ` + prefixed("p.", personCols) + ` FROM ` + from + ` WHERE ` + strings.Join(where, " AND ") + ` ORDER BY ` + order + ` LIMIT ?`
	var rows []personRow
	if err := s.db.X.SelectContext(ctx, &rows, s.db.Rebind(q), args...); err != nil {
		return nil, fmt.Errorf("directory: search: %w", err)
	}
	return s.views(ctx, rows)
}

func prefixed(p, cols string) string {
	parts := strings.Split(cols, ", ")
	for i := range parts {
		parts[i] = p + parts[i]
	}
	return strings.Join(parts, ", ")
}

// views adds department names to rows (one query for all of them).
func (s *Store) views(ctx context.Context, rows []personRow) ([]PersonView, error) {
	out := make([]PersonView, len(rows))
	if len(rows) == 0 {
		return out, nil
	}
	idx := map[int64]int{}
	marks := make([]string, len(rows))
	args := make([]any, len(rows))
	for i, r := range rows {
		idx[r.ID] = i
		marks[i], args[i] = "?", r.ID
		out[i] = PersonView{ID: r.ID, DisplayName: r.DisplayName, Pinyin: r.PinyinFull, Title: r.Title, Rank: r.Rank, Departments: []DeptRef{},
			OfficePhone: r.OfficePhone, Mobile: r.Mobile, Mail: r.Mail, Status: r.Status}
		if r.Mail != "" {
			out[i].ComposeURL = ComposeLink(r.ID)
		}
	}
	q := `SELECT m.person_id, d.id, d.name FROM dir_memberships m JOIN dir_departments d ON d.id = m.dept_id
		WHERE m.person_id IN (` + strings.Join(marks, ",") + `) ORDER BY m.person_id, m.sort_order, d.id`
	mrows, err := s.db.X.QueryContext(ctx, s.db.Rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("directory: departments of results: %w", err)
	}
	defer mrows.Close()
	for mrows.Next() {
		var pid int64
		var d DeptRef
		if err := mrows.Scan(&pid, &d.ID, &d.Name); err != nil {
			return nil, err
		}
		out[idx[pid]].Departments = append(out[idx[pid]].Departments, d)
	}
	return out, mrows.Err()
}

// Tree returns the departments that have not been removed, as a forest of
// roots, children in display order.
func (s *Store) Tree(ctx context.Context) ([]*DeptNode, error) {
	ds, err := s.Departments(ctx)
	if err != nil {
		return nil, err
	}
	nodes := map[int64]*DeptNode{}
	for _, d := range ds {
		if d.Status == StatusLeft {
			continue
		}
		nodes[d.ID] = &DeptNode{Dept: d, Children: []*DeptNode{}}
	}
	roots := []*DeptNode{}
	for _, d := range ds { // ds is in display order, so children are too
		n := nodes[d.ID]
		if n == nil {
			continue
		}
		if p := nodes[d.ParentID]; p != nil && d.ParentID != 0 {
			p.Children = append(p.Children, n)
		} else {
			roots = append(roots, n)
		}
	}
	return roots, nil
}

// PersonCard returns one person's card, compose link included. People
// who left are ErrNotFound.
func (s *Store) PersonCard(ctx context.Context, id int64) (*PersonView, error) {
	var r personRow
	err := s.db.X.GetContext(ctx, &r, s.db.Rebind(`SELECT `+personCols+` FROM dir_people WHERE id = ? AND status <> 'left'`), id)
	if isNoRows(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("directory: card %d: %w", id, err)
	}
	v, err := s.views(ctx, []personRow{r})
	if err != nil {
		return nil, err
	}
	return &v[0], nil
}

// AddressBookHandler serves the address book as JSON:
//
//	GET /departments          the department tree
//	GET /people?q=&dept=&limit=  search (q), or a department's people (dept)
//	GET /people/{id}          one contact card
//	GET /groups?q=&limit=     groups (all that have not left, or those matching q)
//	GET /groups/{id}          one group card: its people (nested groups flattened) and direct subgroups
//
// It does no authentication: cmd/govhub mounts it behind the webmail
// session check (everyone signed in may read the address book). Errors are
// generic JSON {"error": "..."}, never internal detail.
func AddressBookHandler(s *Store) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /departments", func(w http.ResponseWriter, r *http.Request) {
		t, err := s.Tree(r.Context())
		if err != nil {
			jsonError(w, http.StatusInternalServerError, "internal error")
			return
		}
		writeJSON(w, map[string]any{"departments": t})
	})
	mux.HandleFunc("GET /people", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		limit := 50
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				jsonError(w, http.StatusBadRequest, "bad limit")
				return
			}
			limit = min(n, MaxSearchLimit)
		}
		var dept int64
		if v := q.Get("dept"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				jsonError(w, http.StatusBadRequest, "bad department")
				return
			}
			dept = n
		}
		if dept == 0 && strings.TrimSpace(q.Get("q")) == "" {
			jsonError(w, http.StatusBadRequest, "give q or dept")
			return
		}
		var people []PersonView
		var err error
		if dept == 0 {
			people, err = s.Search(r.Context(), q.Get("q"), limit)
		} else {
			people, err = s.People(r.Context(), dept, q.Get("q"), limit)
		}
		if err != nil {
			jsonError(w, http.StatusInternalServerError, "internal error")
			return
		}
		writeJSON(w, map[string]any{"people": people})
	})
	mux.HandleFunc("GET /people/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id <= 0 {
			jsonError(w, http.StatusNotFound, "not found")
			return
		}
		card, err := s.PersonCard(r.Context(), id)
		if errors.Is(err, ErrNotFound) {
			jsonError(w, http.StatusNotFound, "not found")
			return
		}
		if err != nil {
			jsonError(w, http.StatusInternalServerError, "internal error")
			return
		}
		writeJSON(w, card)
	})
	mux.HandleFunc("GET /groups", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		limit := 50
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				jsonError(w, http.StatusBadRequest, "bad limit")
				return
			}
			limit = min(n, MaxSearchLimit)
		}
		gs, err := s.SearchGroups(r.Context(), q.Get("q"), limit)
		if err != nil {
			jsonError(w, http.StatusInternalServerError, "internal error")
			return
		}
		out := make([]GroupView, len(gs))
		for i := range gs {
			out[i] = groupView(&gs[i])
		}
		writeJSON(w, map[string]any{"groups": out})
	})
	mux.HandleFunc("GET /groups/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id <= 0 {
			jsonError(w, http.StatusNotFound, "not found")
			return
		}
		card, err := s.GroupCard(r.Context(), id)
		if errors.Is(err, ErrNotFound) {
			jsonError(w, http.StatusNotFound, "not found")
			return
		}
		if err != nil {
			jsonError(w, http.StatusInternalServerError, "internal error")
			return
		}
		writeJSON(w, card)
	})
	return mux
}

// GroupView is a group as the address book shows it.
type GroupView struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	Pinyin      string `json:"pinyin"`
	Description string `json:"description,omitempty"`
	Mail        string `json:"mail,omitempty"`
	Status      string `json:"status"`
}

// GroupCard is one group with its members: People are everyone in it,
// nested groups flattened (each once, whoever left not shown), Subgroups
// its direct nested groups that have not left.
type GroupCard struct {
	GroupView
	People    []PersonView `json:"people"`
	Subgroups []GroupView  `json:"subgroups"`
}

func groupView(g *GroupRecord) GroupView {
	full, _ := Pinyin(g.Name)
	return GroupView{ID: g.ID, Name: g.Name, Pinyin: full, Description: g.Description, Mail: g.Mail, Status: g.Status}
}

// GroupCard returns one group's card. Groups that left are ErrNotFound.
func (s *Store) GroupCard(ctx context.Context, id int64) (*GroupCard, error) {
	g, err := s.Group(ctx, id)
	if err != nil {
		return nil, err
	}
	if g.Status == StatusLeft {
		return nil, ErrNotFound
	}
	card := &GroupCard{GroupView: groupView(g), People: []PersonView{}, Subgroups: []GroupView{}}
	if g.Status == StatusActive {
		people, err := s.GroupPeople(ctx, id)
		if err != nil {
			return nil, err
		}
		rows := make([]personRow, len(people))
		for i, p := range people {
			rows[i] = personRow{ID: p.ID, DisplayName: p.DisplayName, PinyinFull: p.PinyinFull, PinyinInitials: p.PinyinInitials, Title: p.Title, Rank: p.Rank,
				OfficePhone: p.OfficePhone, Mobile: p.Mobile, Mail: p.Mail, Status: p.Status}
		}
		if card.People, err = s.views(ctx, rows); err != nil {
			return nil, err
		}
	}
	for _, sid := range g.Subgroups {
		sg, err := s.Group(ctx, sid)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if sg.Status != StatusLeft {
			card.Subgroups = append(card.Subgroups, groupView(sg))
		}
	}
	return card, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "private, no-store")
	json.NewEncoder(w).Encode(v)
}

func jsonError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
