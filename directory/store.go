package directory

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/jmoiron/sqlx"
	"github.com/mozillazg/go-pinyin"

	"github.com/govhub/govhub/internal/sqldb"
)

// ErrNotFound: no such department or person.
var ErrNotFound = errors.New("directory: not found")

// ErrInvalid: an edit would store a value a directory must not carry.
var ErrInvalid = errors.New("directory: invalid value")

// Store is govhub's own copy of the organisation chart in the metadata
// database (tables dir_*, migration 00005). The sync engine writes it; the
// address book and provisioning read it.
type Store struct {
	db  *sqldb.DB
	now func() time.Time
	idx indexCache
}

// NewStore returns the chart over a migrated database. now may be nil
// (time.Now).
func NewStore(db *sqldb.DB, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, now: now}
}

// DB is the database the store uses.
func (s *Store) DB() *sqldb.DB { return s.db }

// Dept is a department as govhub keeps it.
type Dept struct {
	ID       int64  `json:"id" db:"id"`
	ParentID int64  `json:"parent_id,omitempty" db:"parent_id"`
	Name     string `json:"name" db:"name"`
	Order    int    `json:"order" db:"sort_order"`
	Status   string `json:"status" db:"status"`
}

// MemberOf is one department membership of a person.
type MemberOf struct {
	DeptID int64 `json:"dept_id"`
	Order  int   `json:"order"`
}

// PersonRecord is a person as govhub keeps it. ID is the stable govhub id.
type PersonRecord struct {
	ID             int64      `json:"id"`
	DisplayName    string     `json:"display_name"`
	PinyinFull     string     `json:"pinyin"`
	PinyinInitials string     `json:"pinyin_initials"`
	Title          string     `json:"title,omitempty"`
	Rank           string     `json:"rank,omitempty"`
	OfficePhone    string     `json:"office_phone,omitempty"`
	Mobile         string     `json:"mobile,omitempty"`
	Mail           string     `json:"mail,omitempty"`
	EmployeeNo     string     `json:"employee_no,omitempty"`
	Status         string     `json:"status"`
	LeftAt         time.Time  `json:"left_at,omitzero"`
	Memberships    []MemberOf `json:"memberships,omitempty"`
	// sortKey is the tree position of the first department (dir_people.
	// sort_dept): address-book results sort by it.
	sortKey int
}

// Pinyin returns the toneless pinyin of name, syllables run together
// ("张三" → "zhangsan"), and its initials ("zs"). Characters without pinyin
// (Latin letters, digits) are kept lowercased in the full form; each run of
// them contributes its first letter to the initials, so "Li Lei" gives
// "lilei" and "ll".
func Pinyin(name string) (full, initials string) {
	var f, in strings.Builder
	a := pinyin.NewArgs()
	inWord := false
	for _, r := range name {
		if unicode.Is(unicode.Han, r) {
			inWord = false
			py := pinyin.SinglePinyin(r, a)
			if len(py) > 0 && py[0] != "" {
				f.WriteString(py[0])
				in.WriteByte(py[0][0])
			}
			continue
		}
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			lr := unicode.ToLower(r)
			f.WriteRune(lr)
			if !inWord {
				in.WriteRune(lr)
			}
			inWord = true
			continue
		}
		inWord = false
	}
	return f.String(), in.String()
}

// searchText is what Search matches a query against: every searchable
// field, lowercased, separated by a byte no query contains.
func searchText(p *PersonRecord) string {
	full, ini := p.PinyinFull, p.PinyinInitials
	return strings.ToLower(strings.Join([]string{p.DisplayName, full, ini, p.Title, p.OfficePhone, p.Mobile, p.Mail}, "\x01"))
}

type personRow struct {
	ID             int64  `db:"id"`
	DisplayName    string `db:"display_name"`
	PinyinFull     string `db:"pinyin_full"`
	PinyinInitials string `db:"pinyin_initials"`
	Title          string `db:"title"`
	Rank           string `db:"rank"`
	OfficePhone    string `db:"office_phone"`
	Mobile         string `db:"mobile"`
	Mail           string `db:"mail"`
	EmployeeNo     string `db:"employee_no"`
	Status         string `db:"status"`
	LeftAt         int64  `db:"left_at"`
	SortDept       int    `db:"sort_dept"`
}

const personCols = `id, display_name, pinyin_full, pinyin_initials, title, rank, office_phone, mobile, mail, employee_no, status, left_at, sort_dept`

func (r personRow) record() *PersonRecord {
	p := &PersonRecord{ID: r.ID, DisplayName: r.DisplayName, PinyinFull: r.PinyinFull, PinyinInitials: r.PinyinInitials,
		Title: r.Title, Rank: r.Rank, OfficePhone: r.OfficePhone, Mobile: r.Mobile, Mail: r.Mail, EmployeeNo: r.EmployeeNo, Status: r.Status, sortKey: r.SortDept}
	if r.LeftAt != 0 {
		p.LeftAt = time.Unix(r.LeftAt, 0).UTC()
	}
	return p
}

type deptRow struct {
	ID       int64         `db:"id"`
	ParentID sql.NullInt64 `db:"parent_id"`
	Name     string        `db:"name"`
	Order    int           `db:"sort_order"`
	Status   string        `db:"status"`
}

func (r deptRow) dept() Dept {
	return Dept{ID: r.ID, ParentID: r.ParentID.Int64, Name: r.Name, Order: r.Order, Status: r.Status}
}

// Departments lists every department, in display order within each parent.
func (s *Store) Departments(ctx context.Context) ([]Dept, error) {
	var rows []deptRow
	if err := s.db.X.SelectContext(ctx, &rows, `SELECT id, parent_id, name, sort_order, status FROM dir_departments ORDER BY sort_order, id`); err != nil {
		return nil, fmt.Errorf("directory: departments: %w", err)
	}
	out := make([]Dept, len(rows))
	for i, r := range rows {
		out[i] = r.dept()
	}
	return out, nil
}

// Person returns one person with their memberships.
func (s *Store) Person(ctx context.Context, id int64) (*PersonRecord, error) {
	var r personRow
	err := s.db.X.GetContext(ctx, &r, s.db.Rebind(`SELECT `+personCols+` FROM dir_people WHERE id = ?`), id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("directory: person %d: %w", id, err)
	}
	p := r.record()
	if err := s.db.X.SelectContext(ctx, &p.Memberships, s.db.Rebind(`SELECT dept_id AS deptid, sort_order AS "order" FROM dir_memberships WHERE person_id = ? ORDER BY sort_order, dept_id`), id); err != nil {
		return nil, fmt.Errorf("directory: person %d memberships: %w", id, err)
	}
	return p, nil
}

// allPeople loads every person with memberships (the engine's working set).
func (s *Store) allPeople(ctx context.Context) (map[int64]*PersonRecord, error) {
	rows, err := s.db.X.QueryContext(ctx, `SELECT `+personCols+` FROM dir_people`)
	if err != nil {
		return nil, fmt.Errorf("directory: load people: %w", err)
	}
	out := map[int64]*PersonRecord{}
	for rows.Next() {
		var r personRow
		// Scan, not StructScan: no reflection per row at 200,000 rows.
		if err := rows.Scan(&r.ID, &r.DisplayName, &r.PinyinFull, &r.PinyinInitials, &r.Title, &r.Rank, &r.OfficePhone, &r.Mobile,
			&r.Mail, &r.EmployeeNo, &r.Status, &r.LeftAt, &r.SortDept); err != nil {
			rows.Close()
			return nil, err
		}
		out[r.ID] = r.record()
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	mrows, err := s.db.X.QueryContext(ctx, `SELECT person_id, dept_id, sort_order FROM dir_memberships`)
	if err != nil {
		return nil, fmt.Errorf("directory: load memberships: %w", err)
	}
	defer mrows.Close()
	for mrows.Next() {
		var pid, did int64
		var ord int
		if err := mrows.Scan(&pid, &did, &ord); err != nil {
			return nil, err
		}
		if p := out[pid]; p != nil {
			p.Memberships = append(p.Memberships, MemberOf{DeptID: did, Order: ord})
		}
	}
	return out, mrows.Err()
}

// ptx is a transaction that prepares each statement text once: a sync
// applies the same few statements to up to hundreds of thousands of rows,
// and parsing them each time was a third of the apply time on SQLite.
type ptx struct {
	db *sqldb.DB
	tx *sqlx.Tx
	st map[string]*sqlx.Stmt
}

func newPtx(db *sqldb.DB, tx *sqlx.Tx) *ptx { return &ptx{db: db, tx: tx, st: map[string]*sqlx.Stmt{}} }

func (p *ptx) stmt(ctx context.Context, q string) (*sqlx.Stmt, error) {
	if s, ok := p.st[q]; ok {
		return s, nil
	}
	s, err := p.tx.PreparexContext(ctx, p.db.Rebind(q))
	if err != nil {
		return nil, err
	}
	p.st[q] = s
	return s, nil
}

func (p *ptx) exec(ctx context.Context, q string, args ...any) error {
	s, err := p.stmt(ctx, q)
	if err != nil {
		return err
	}
	_, err = s.ExecContext(ctx, args...)
	return err
}

func (p *ptx) queryID(ctx context.Context, q string, args ...any) (int64, error) {
	s, err := p.stmt(ctx, q)
	if err != nil {
		return 0, err
	}
	var id int64
	err = s.QueryRowxContext(ctx, args...).Scan(&id)
	return id, err
}

func (p *ptx) close() {
	for _, s := range p.st {
		s.Close()
	}
}

// insertPerson writes a new person and returns its id.
func insertPerson(ctx context.Context, tx *ptx, p *PersonRecord, now time.Time) (int64, error) {
	q := `INSERT INTO dir_people (display_name, pinyin_full, pinyin_initials, title, rank, office_phone, mobile, mail, employee_no, status, left_at, sort_dept, search_text, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`
	id, err := tx.queryID(ctx, q, p.DisplayName, p.PinyinFull, p.PinyinInitials, p.Title, p.Rank, p.OfficePhone, p.Mobile,
		p.Mail, p.EmployeeNo, p.Status, unixOrZero(p.LeftAt), p.sortKey, searchText(p), now.Unix())
	if err != nil {
		return 0, fmt.Errorf("directory: insert person: %w", err)
	}
	return id, nil
}

func updatePerson(ctx context.Context, tx *ptx, p *PersonRecord, now time.Time) error {
	q := `UPDATE dir_people SET display_name = ?, pinyin_full = ?, pinyin_initials = ?, title = ?, rank = ?, office_phone = ?, mobile = ?,
		mail = ?, employee_no = ?, status = ?, left_at = ?, sort_dept = ?, search_text = ?, updated_at = ? WHERE id = ?`
	err := tx.exec(ctx, q, p.DisplayName, p.PinyinFull, p.PinyinInitials, p.Title, p.Rank, p.OfficePhone, p.Mobile,
		p.Mail, p.EmployeeNo, p.Status, unixOrZero(p.LeftAt), p.sortKey, searchText(p), now.Unix(), p.ID)
	if err != nil {
		return fmt.Errorf("directory: update person %d: %w", p.ID, err)
	}
	return nil
}

func setMemberships(ctx context.Context, tx *ptx, id int64, ms []MemberOf, isNew bool) error {
	if isNew {
		// nothing to delete
	} else if err := tx.exec(ctx, `DELETE FROM dir_memberships WHERE person_id = ?`, id); err != nil {
		return fmt.Errorf("directory: memberships of %d: %w", id, err)
	}
	for _, m := range ms {
		if err := tx.exec(ctx, `INSERT INTO dir_memberships (person_id, dept_id, sort_order) VALUES (?, ?, ?)`, id, m.DeptID, m.Order); err != nil {
			return fmt.Errorf("directory: memberships of %d: %w", id, err)
		}
	}
	return nil
}

func insertDept(ctx context.Context, tx *ptx, d *Dept, now time.Time) (int64, error) {
	id, err := tx.queryID(ctx, `INSERT INTO dir_departments (parent_id, name, sort_order, status, updated_at) VALUES (?, ?, ?, ?, ?) RETURNING id`,
		nullID(d.ParentID), d.Name, d.Order, d.Status, now.Unix())
	if err != nil {
		return 0, fmt.Errorf("directory: insert department: %w", err)
	}
	return id, nil
}

func updateDept(ctx context.Context, tx *ptx, d *Dept, now time.Time) error {
	err := tx.exec(ctx, `UPDATE dir_departments SET parent_id = ?, name = ?, sort_order = ?, status = ?, updated_at = ? WHERE id = ?`,
		nullID(d.ParentID), d.Name, d.Order, d.Status, now.Unix(), d.ID)
	if err != nil {
		return fmt.Errorf("directory: update department %d: %w", d.ID, err)
	}
	return nil
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// DepartmentMembers returns the mail addresses of the people in department
// deptID (and, with includeSubdepartments, in every department below it)
// who still receive mail: active and disabled people, not those who left.
// Each address appears once, sorted. The mail core expands a department's
// distribution address with it at delivery time, so members follow the
// chart without a copy to keep in step.
func (s *Store) DepartmentMembers(ctx context.Context, deptID int64, includeSubdepartments bool) ([]string, error) {
	var q string
	if includeSubdepartments {
		q = `WITH RECURSIVE sub(id) AS (SELECT id FROM dir_departments WHERE id = ?
			UNION SELECT d.id FROM dir_departments d JOIN sub ON d.parent_id = sub.id)
			SELECT DISTINCT p.mail FROM dir_people p JOIN dir_memberships m ON m.person_id = p.id
			WHERE m.dept_id IN (SELECT id FROM sub) AND p.mail <> '' AND p.status <> 'left' ORDER BY p.mail`
	} else {
		q = `SELECT DISTINCT p.mail FROM dir_people p JOIN dir_memberships m ON m.person_id = p.id
			WHERE m.dept_id = ? AND p.mail <> '' AND p.status <> 'left' ORDER BY p.mail`
	}
	var out []string
	if err := s.db.X.SelectContext(ctx, &out, s.db.Rebind(q), deptID); err != nil {
		return nil, fmt.Errorf("directory: members of %d: %w", deptID, err)
	}
	return out, nil
}

// membershipsKey is the canonical text of a membership list, for
// comparisons and snapshots: "dept:order" sorted by dept id.
func membershipsKey(ms []MemberOf) string {
	c := append([]MemberOf(nil), ms...)
	sort.Slice(c, func(i, j int) bool { return c[i].DeptID < c[j].DeptID })
	var b strings.Builder
	for i, m := range c {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(m.DeptID, 10))
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(m.Order))
	}
	return b.String()
}

// EditPerson changes a person in govhub (an administrator's edit, or
// govhub-owned fields such as the mail address) by running fn on the
// current record inside a transaction. Memberships are not edited here.
// The next sync compares peers against the new values: fields govhub owns
// are written back to writable peers.
func (s *Store) EditPerson(ctx context.Context, id int64, fn func(p *PersonRecord) error) error {
	return s.db.InTx(ctx, func(tx *sqlx.Tx) error {
		var r personRow
		err := tx.GetContext(ctx, &r, s.db.Rebind(`SELECT `+personCols+` FROM dir_people WHERE id = ?`), id)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		p := r.record()
		if err := fn(p); err != nil {
			return err
		}
		p.ID, p.sortKey = id, r.SortDept
		if p.DisplayName == "" || badText(p.DisplayName, p.Title, p.Rank, p.OfficePhone, p.Mobile, p.Mail, p.EmployeeNo) {
			return fmt.Errorf("%w: empty name or bad characters", ErrInvalid)
		}
		if p.Mail != "" && !validMail(p.Mail) {
			return fmt.Errorf("%w: malformed mail address", ErrInvalid)
		}
		switch p.Status {
		case StatusActive, StatusDisabled, StatusLeft:
		default:
			return fmt.Errorf("%w: unknown status", ErrInvalid)
		}
		p.PinyinFull, p.PinyinInitials = Pinyin(p.DisplayName)
		pt := newPtx(s.db, tx)
		defer pt.close()
		if err := updatePerson(ctx, pt, p, s.now()); err != nil {
			return err
		}
		return bumpGeneration(ctx, tx)
	})
}

// rowBatch inserts rows into one table in multi-row statements: at
// 200,000 people one statement a row spent most of a first sync's apply
// in the driver. Rows are sent as each statement fills, so memory stays at
// one statement's values. Each statement size is prepared once.
type rowBatch struct {
	tx    *ptx
	table string
	cols  string
	ncols int
	args  []any
}

func (p *ptx) batch(table, cols string, ncols int) *rowBatch {
	return &rowBatch{tx: p, table: table, cols: cols, ncols: ncols}
}

// rowsPerStatement keeps a statement well under SQLite's 32766 and
// PostgreSQL's 65535 parameters.
func (b *rowBatch) rowsPerStatement() int { return 16000 / b.ncols }

// add queues one row (ncols values) and sends a full statement.
func (b *rowBatch) add(ctx context.Context, vals ...any) error {
	b.args = append(b.args, vals...)
	if len(b.args) >= b.rowsPerStatement()*b.ncols {
		return b.flush(ctx)
	}
	return nil
}

// flush sends what is queued.
func (b *rowBatch) flush(ctx context.Context) error {
	n := len(b.args) / b.ncols
	if n == 0 {
		return nil
	}
	var q strings.Builder
	q.WriteString("INSERT INTO " + b.table + " (" + b.cols + ") VALUES ")
	row := "(" + strings.Repeat("?, ", b.ncols-1) + "?)"
	for i := range n {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(row)
	}
	err := b.tx.exec(ctx, q.String(), b.args...)
	clear(b.args)
	b.args = b.args[:0]
	if err != nil {
		return fmt.Errorf("directory: insert into %s: %w", b.table, err)
	}
	return nil
}

// reservePersonIDs returns n new person ids, inside the applying
// transaction: SQLite's next AUTOINCREMENT values (the transaction holds
// the write lock, and explicit ids move sqlite_sequence on), PostgreSQL's
// next identity values.
func (p *ptx) reservePersonIDs(ctx context.Context, n int) ([]int64, error) {
	out := make([]int64, 0, n)
	if n == 0 {
		return out, nil
	}
	if p.db.Dialect == sqldb.Postgres {
		rows, err := p.tx.QueryContext(ctx, `SELECT nextval(pg_get_serial_sequence('dir_people', 'id')) FROM generate_series(1, $1)`, n)
		if err != nil {
			return nil, fmt.Errorf("directory: reserve ids: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return nil, err
			}
			out = append(out, id)
		}
		return out, rows.Err()
	}
	var base int64
	if err := p.tx.QueryRowContext(ctx, `SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'dir_people'), 0),
		COALESCE((SELECT MAX(id) FROM dir_people), 0))`).Scan(&base); err != nil {
		return nil, fmt.Errorf("directory: reserve ids: %w", err)
	}
	for i := range n {
		out = append(out, base+1+int64(i))
	}
	return out, nil
}

// newPersonCols and addPerson are a new person's row in a rowBatch.
const newPersonCols = `id, display_name, pinyin_full, pinyin_initials, title, rank, office_phone, mobile, mail, employee_no, status, left_at, sort_dept, search_text, updated_at`

func (b *rowBatch) addPerson(ctx context.Context, id int64, p *PersonRecord, now time.Time) error {
	return b.add(ctx, id, p.DisplayName, p.PinyinFull, p.PinyinInitials, p.Title, p.Rank, p.OfficePhone, p.Mobile,
		p.Mail, p.EmployeeNo, p.Status, unixOrZero(p.LeftAt), p.sortKey, searchText(p), now.Unix())
}
