package main

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/govhub/govhub/directory"
	"github.com/govhub/govhub/mailcore/smtpserver"
)

// deptGroups makes the chart's departments and groups distribution lists
// for the SMTP server:
//
//	dept-<id>@domain       the department's members
//	dept-<id>-all@domain   its sub-departments' too
//	group-<id>@domain      a group's people, nested groups flattened
//	the group's own mail   likewise, when its domain is domain or one of localDomains
//
// Members follow the chart: the list is read from the directory at RCPT
// time, never stored, and the SMTP server stores one body for all.
type deptGroups struct {
	dir    *directory.Store
	domain string
	// localDomains are further local domains (lower case) in which a
	// group's own mail address is served; domain always is.
	localDomains []string
}

var _ smtpserver.Groups = deptGroups{}

func (g deptGroups) Members(ctx context.Context, addr string) ([]string, bool, error) {
	addr = strings.ToLower(addr)
	local, domain, ok := strings.Cut(addr, "@")
	if !ok {
		return nil, false, nil
	}
	if domain == g.domain {
		if rest, ok := strings.CutPrefix(local, "dept-"); ok {
			return g.department(ctx, rest)
		}
		if rest, ok := strings.CutPrefix(local, "group-"); ok {
			if id, err := strconv.ParseInt(rest, 10, 64); err == nil && id > 0 {
				return g.group(ctx, id)
			}
			return nil, false, nil
		}
	}
	if domain == "" || (domain != g.domain && !slices.Contains(g.localDomains, domain)) {
		return nil, false, nil
	}
	gr, err := g.dir.GroupByMail(ctx, addr)
	if errors.Is(err, directory.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return g.group(ctx, gr.ID)
}

// group expands an active group; any other is an unknown recipient.
func (g deptGroups) group(ctx context.Context, id int64) ([]string, bool, error) {
	gr, err := g.dir.Group(ctx, id)
	if errors.Is(err, directory.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if gr.Status != directory.StatusActive {
		return nil, false, nil
	}
	members, err := g.dir.GroupMemberMails(ctx, id)
	if err != nil {
		return nil, false, err
	}
	return members, true, nil
}

func (g deptGroups) department(ctx context.Context, rest string) ([]string, bool, error) {
	idPart, all := strings.CutSuffix(rest, "-all")
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
