package directory

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrAmbiguous: more than one person matches where one was asked for.
var ErrAmbiguous = errors.New("directory: more than one person matches")

// PersonBy finds the one person whose field equals value, for sign-in
// (sso's identity mapping). Fields: "person_id" (govhub's id), "employee_no",
// "mail" (case-insensitive), or "anchor" (the immutable id the person has
// in one of peers: an LDAP entryUUID/objectGUID, an affairs-link user id).
// ErrNotFound when none; an error naming the ambiguity when several match,
// because signing someone in as the wrong one of two people is worse than
// not signing them in.
func (s *Store) PersonBy(ctx context.Context, field, value string, peers []string) (*PersonRecord, error) {
	value = strings.TrimSpace(value)
	if value == "" {
		return nil, ErrNotFound
	}
	var ids []int64
	var err error
	switch field {
	case "person_id":
		id, perr := strconv.ParseInt(value, 10, 64)
		if perr != nil {
			return nil, ErrNotFound
		}
		ids = []int64{id}
	case "employee_no":
		err = s.db.X.SelectContext(ctx, &ids, s.db.Rebind(`SELECT id FROM dir_people WHERE employee_no = ? LIMIT 2`), value)
	case "mail":
		// Mail is kept as the peer spelled it; staff addresses are
		// lower-case in practice, and both spellings use the index.
		err = s.db.X.SelectContext(ctx, &ids, s.db.Rebind(`SELECT id FROM dir_people WHERE mail = ? OR mail = ? LIMIT 2`), value, strings.ToLower(value))
	case "anchor":
		if len(peers) == 0 {
			return nil, ErrNotFound
		}
		q := `SELECT DISTINCT object_id FROM dir_anchors WHERE kind = ? AND anchor = ? AND peer IN (?` + strings.Repeat(", ?", len(peers)-1) + `) LIMIT 2`
		args := []any{int(KindPerson), value}
		for _, p := range peers {
			args = append(args, p)
		}
		err = s.db.X.SelectContext(ctx, &ids, s.db.Rebind(q), args...)
	default:
		return nil, fmt.Errorf("directory: people are not found by %q", field)
	}
	if err != nil {
		return nil, fmt.Errorf("directory: person by %s: %w", field, err)
	}
	switch len(ids) {
	case 0:
		return nil, ErrNotFound
	case 1:
	default:
		return nil, fmt.Errorf("%w: %d people have this %s", ErrAmbiguous, len(ids), field)
	}
	p, err := s.Person(ctx, ids[0])
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return p, err
}
