package main

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/govhub/govhub/directory"
	"github.com/govhub/govhub/mailcore/smtpserver"
)

// deptGroups makes departments distribution lists for the SMTP server:
// dept-<id>@domain reaches the department's members, dept-<id>-all@domain
// its sub-departments' too. Members follow the chart: the list is read from
// the directory at RCPT time, never stored.
type deptGroups struct {
	dir    *directory.Store
	domain string
}

var _ smtpserver.Groups = deptGroups{}

func (g deptGroups) Members(ctx context.Context, addr string) ([]string, bool, error) {
	local, domain, ok := strings.Cut(strings.ToLower(addr), "@")
	if !ok || domain != g.domain || !strings.HasPrefix(local, "dept-") {
		return nil, false, nil
	}
	idPart, all := strings.CutSuffix(strings.TrimPrefix(local, "dept-"), "-all")
	id, err := strconv.ParseInt(idPart, 10, 64)
	if err != nil || id <= 0 {
		return nil, false, nil
	}
	// Only an existing department is a group (an unknown one is an unknown
	// recipient, 550 5.1.1). The tree is a few hundred rows.
	depts, err := g.dir.Departments(ctx)
	if err != nil {
		return nil, false, err
	}
	found := false
	for _, d := range depts {
		found = found || d.ID == id
	}
	if !found {
		return nil, false, nil
	}
	members, err := g.dir.DepartmentMembers(ctx, id, all)
	if errors.Is(err, directory.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return members, true, nil
}
