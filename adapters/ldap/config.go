package ldap

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// Config is one LDAP peer as IT configures it. Zero values take the
// defaults documented per field (see withDefaults), chosen for OpenLDAP
// with inetOrgPerson people under organizationalUnit departments.
type Config struct {
	// Name is the peer name used in schedules, anchors and reports
	// (default "ldap").
	Name string `yaml:"name"`
	// URL is ldap://host[:port] or ldaps://host[:port].
	URL string `yaml:"url"`
	// StartTLS upgrades an ldap:// connection (RFC 4511 4.14) before
	// binding. A server that refuses is an error, never a silent fall-back
	// to plain text.
	StartTLS bool    `yaml:"starttls"`
	TLS      TLSConf `yaml:"tls"`
	// BindDN and BindSecret authenticate with a simple bind (RFC 4513
	// 5.1.3). An empty BindDN binds anonymously. The secret is never
	// logged or put into an error.
	BindDN     string `yaml:"bind_dn"`
	BindSecret string `yaml:"bind_secret"`

	// People and Departments say where to search. People.Filter defaults
	// to (objectClass=inetOrgPerson), Departments.Filter to
	// (objectClass=organizationalUnit). Departments.BaseDN defaults to
	// People.BaseDN.
	People      Search `yaml:"people"`
	Departments Search `yaml:"departments"`
	// Groups says where groups are: Groups.BaseDN defaults to
	// People.BaseDN, Groups.Filter to
	// (|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)).
	// Their member attributes (Attributes.GroupMembers) hold DNs of people
	// or of nested groups. NoGroups reads none.
	Groups   Search `yaml:"groups"`
	NoGroups bool   `yaml:"no_groups"`
	// CreateBaseDN is where CreatePerson adds entries (default
	// People.BaseDN).
	CreateBaseDN string `yaml:"create_base_dn"`

	Attributes Attributes `yaml:"attributes"`

	// PageSize for RFC 2696 simple paged results (default 500).
	PageSize int `yaml:"page_size"`
	// ContentSync chooses how Changes finds changes: "auto" (default):
	// RFC 4533 when the root DSE lists the sync request control and the
	// anchor is entryUUID, else modifyTimestamp; "off": always
	// modifyTimestamp.
	ContentSync string `yaml:"content_sync"`
	// DeltaBy chooses how Changes finds changes when content sync is not
	// used: "modifyTimestamp" (entries modified at or after the cursor's
	// second), or "change_stamp": a high-water mark of
	// Attributes.ChangeStamp in the cursor, entries with a greater stamp
	// (Active Directory's uSNChanged; "auto", the default, picks it for
	// the objectGUID anchor, modifyTimestamp otherwise). Neither sees
	// deletions: the nightly full run finds them. uSNChanged values are a
	// domain controller's own: point the peer at one DC (a cursor from
	// another is answered with whatever that DC numbered higher).
	DeltaBy string `yaml:"delta_by"`
	// Writable enables UpdatePerson and CreatePerson.
	Writable bool `yaml:"writable"`
	// DialTimeout (default 10s) bounds connecting; RequestTimeout (default
	// 60s) bounds each request, a page of results included.
	DialTimeout    time.Duration `yaml:"dial_timeout"`
	RequestTimeout time.Duration `yaml:"request_timeout"`

	// Logger receives connection and run events; nil discards them.
	Logger *slog.Logger `yaml:"-"`
}

// TLSConf verifies the server for ldaps:// and StartTLS.
type TLSConf struct {
	// CAFile is a PEM bundle of the CAs to trust instead of the system's.
	CAFile string `yaml:"ca_file"`
	// ServerName overrides the host name checked in the certificate.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify turns certificate checks off. Only for tests;
	// never implied by anything else.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// Search is a base DN and a filter. The filter is IT's configuration,
// sent as written (after a parse check); values govhub adds to filters are
// always escaped (RFC 4515 3).
type Search struct {
	BaseDN string `yaml:"base_dn"`
	Filter string `yaml:"filter"`
}

// Attributes maps directory fields to LDAP attribute names.
type Attributes struct {
	// Anchor is the immutable id: entryUUID (default, RFC 4530) or
	// objectGUID (Active Directory; the 16 bytes are rendered as the
	// canonical GUID string).
	Anchor string `yaml:"anchor"`
	// DisplayName defaults to cn (displayName is the usual alternative).
	DisplayName string `yaml:"display_name"`
	// DepartmentName is the department's name attribute (default ou).
	DepartmentName string `yaml:"department_name"`
	Mail           string `yaml:"mail"`         // default mail
	Mobile         string `yaml:"mobile"`       // default mobile
	OfficePhone    string `yaml:"office_phone"` // default telephoneNumber
	Title          string `yaml:"title"`        // default title
	Rank           string `yaml:"rank"`         // optional, no default
	EmployeeNo     string `yaml:"employee_no"`  // default employeeNumber
	// Order is an optional integer attribute ordering people and
	// departments for display.
	Order string `yaml:"order"`
	// MembershipFromDN: a person whose parent entry is a department is a
	// member of it (default true unless MemberOf is set).
	MembershipFromDN *bool `yaml:"membership_from_dn"`
	// MemberOf is an optional attribute on people whose values are
	// department DNs (or department names), for people who belong to
	// several departments or live outside the department tree.
	MemberOf string `yaml:"member_of"`
	// Status is an optional attribute; its value in DisabledValues or
	// LeftValues (case-insensitive) gives that status, anything else is
	// active.
	Status         string   `yaml:"status"`
	DisabledValues []string `yaml:"disabled_values"`
	LeftValues     []string `yaml:"left_values"`
	// UserAccountControl reads Active Directory's userAccountControl:
	// the ACCOUNTDISABLE bit (0x2) means disabled.
	UserAccountControl bool `yaml:"user_account_control"`
	// GroupName (default cn), GroupDescription (default description)
	// and GroupMail (default mail) are the group's attributes;
	// GroupMembers the attributes holding member DNs (default member and
	// uniqueMember; a uniqueMember's optional "#'...'B" UID is dropped).
	GroupName        string   `yaml:"group_name"`
	GroupDescription string   `yaml:"group_description"`
	GroupMail        string   `yaml:"group_mail"`
	GroupMembers     []string `yaml:"group_members"`
	// ChangeStamp is an operational attribute the server changes on every
	// modification of an entry: entryCSN (OpenLDAP; the default with the
	// entryUUID anchor) or uSNChanged (Active Directory; the default with
	// objectGUID). A full run then reads only anchor and stamp of people
	// govhub holds at that stamp, and all attributes of the others. "none"
	// reads everyone in full. An entry without the attribute is always
	// read in full.
	ChangeStamp string `yaml:"change_stamp"`
}

const (
	anchorEntryUUID  = "entryUUID"
	anchorObjectGUID = "objectGUID"
)

// withDefaults returns cfg with every zero field given its default.
func (cfg Config) withDefaults() Config {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&cfg.Name, "ldap")
	def(&cfg.People.Filter, "(objectClass=inetOrgPerson)")
	def(&cfg.Departments.Filter, "(objectClass=organizationalUnit)")
	def(&cfg.Departments.BaseDN, cfg.People.BaseDN)
	def(&cfg.Groups.Filter, "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))")
	def(&cfg.Groups.BaseDN, cfg.People.BaseDN)
	def(&cfg.CreateBaseDN, cfg.People.BaseDN)
	def(&cfg.ContentSync, "auto")
	def(&cfg.DeltaBy, "auto")
	a := &cfg.Attributes
	def(&a.Anchor, anchorEntryUUID)
	def(&a.DisplayName, "cn")
	def(&a.DepartmentName, "ou")
	def(&a.Mail, "mail")
	def(&a.Mobile, "mobile")
	def(&a.OfficePhone, "telephoneNumber")
	def(&a.Title, "title")
	def(&a.EmployeeNo, "employeeNumber")
	def(&a.GroupName, "cn")
	def(&a.GroupDescription, "description")
	def(&a.GroupMail, "mail")
	if len(a.GroupMembers) == 0 {
		a.GroupMembers = []string{"member", "uniqueMember"}
	}
	if a.ChangeStamp == "" {
		a.ChangeStamp = "entryCSN"
		if strings.EqualFold(a.Anchor, anchorObjectGUID) {
			a.ChangeStamp = "uSNChanged"
		}
	}
	if a.MembershipFromDN == nil {
		v := a.MemberOf == ""
		a.MembershipFromDN = &v
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = 500
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 60 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

// Validate reports the first configuration mistake in terms IT can act on.
func (cfg Config) Validate() error {
	c := cfg.withDefaults()
	u, err := url.Parse(c.URL)
	if err != nil || c.URL == "" {
		return errors.New("ldap: url must be ldap://host[:port] or ldaps://host[:port]")
	}
	switch u.Scheme {
	case "ldap":
	case "ldaps":
		if c.StartTLS {
			return errors.New("ldap: starttls makes no sense with ldaps://")
		}
	default:
		return fmt.Errorf("ldap: url scheme %q: want ldap or ldaps", u.Scheme)
	}
	if c.People.BaseDN == "" {
		return errors.New("ldap: people.base_dn is required")
	}
	for _, s := range []struct{ what, f string }{{"people.filter", c.People.Filter}, {"departments.filter", c.Departments.Filter}, {"groups.filter", c.Groups.Filter}} {
		if err := checkFilter(s.f); err != nil {
			return fmt.Errorf("ldap: %s: %w", s.what, err)
		}
	}
	switch c.Attributes.Anchor {
	case anchorEntryUUID, anchorObjectGUID:
	default:
		if strings.TrimSpace(c.Attributes.Anchor) == "" {
			return errors.New("ldap: attributes.anchor is empty")
		}
	}
	switch c.ContentSync {
	case "auto", "off":
	default:
		return fmt.Errorf("ldap: content_sync %q: want auto or off", c.ContentSync)
	}
	switch c.DeltaBy {
	case "auto", "modifyTimestamp":
	case "change_stamp":
		if strings.EqualFold(c.Attributes.ChangeStamp, "none") {
			return errors.New("ldap: delta_by change_stamp needs attributes.change_stamp")
		}
	default:
		return fmt.Errorf("ldap: delta_by %q: want auto, modifyTimestamp or change_stamp", c.DeltaBy)
	}
	if c.Writable {
		// A created person must be found by the next full read, or that
		// read would take it for a deletion.
		if base, under := normDN(c.People.BaseDN), normDN(c.CreateBaseDN); under != base && !strings.HasSuffix(under, ","+base) {
			return fmt.Errorf("ldap: create_base_dn %q is not under people.base_dn %q", c.CreateBaseDN, c.People.BaseDN)
		}
	}
	if c.BindDN == "" && c.BindSecret != "" {
		return errors.New("ldap: bind_secret given without bind_dn")
	}
	return nil
}
