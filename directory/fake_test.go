package directory

import (
	"context"
	"errors"
	"strconv"
	"sync"
)

// fakePeer is an in-memory directory with a change log (the cursor is the
// log position) and failure injection.
type fakePeer struct {
	mu         sync.Mutex
	name       string
	depts      []Department
	people     []*Person
	pos        map[string]int // anchor → index in people
	log        []Entry
	extra      []Entry // broken entries reported by every read
	expired    bool    // Changes answers ErrCursorExpired
	failRead   error   // Full and Changes fail after failAfter entries
	failAfter  int
	block      chan struct{} // Full waits for it to close
	started    chan struct{} // closed when a Full starts
	updates    []map[string]string
	failUpdate error
	groups     []Group
	created    []Person // what CreatePerson was given
	failCreate error
}

func (f *fakePeer) setGroup(g Group) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if g.Status == "" {
		g.Status = StatusActive
	}
	c := g
	f.log = append(f.log, Entry{Kind: KindGroup, Anchor: g.Anchor, Group: &c})
	for i := range f.groups {
		if f.groups[i].Anchor == g.Anchor {
			f.groups[i] = g
			return
		}
	}
	f.groups = append(f.groups, g)
}

func (f *fakePeer) deleteGroup(anchor string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.groups {
		if f.groups[i].Anchor == anchor {
			f.groups = append(f.groups[:i], f.groups[i+1:]...)
			f.log = append(f.log, Entry{Kind: KindGroup, Anchor: anchor, Deleted: true})
			return
		}
	}
}

func newFake(name string) *fakePeer { return &fakePeer{name: name} }

func (f *fakePeer) Name() string { return f.name }

func (f *fakePeer) setDept(d Department) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d.Status == "" {
		d.Status = StatusActive
	}
	for i := range f.depts {
		if f.depts[i].Anchor == d.Anchor {
			f.depts[i] = d
			f.log = append(f.log, Entry{Kind: KindDepartment, Anchor: d.Anchor, Department: &d})
			return
		}
	}
	f.depts = append(f.depts, d)
	f.log = append(f.log, Entry{Kind: KindDepartment, Anchor: d.Anchor, Department: &d})
}

func (f *fakePeer) setPerson(p Person) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setPersonLocked(p)
}

func (f *fakePeer) setPersonLocked(p Person) {
	if p.Status == "" {
		p.Status = StatusActive
	}
	c := p
	f.log = append(f.log, Entry{Kind: KindPerson, Anchor: p.Anchor, Person: &c})
	if f.pos == nil {
		f.pos = map[string]int{}
	}
	if i, ok := f.pos[p.Anchor]; ok {
		f.people[i] = &p
		return
	}
	f.pos[p.Anchor] = len(f.people)
	f.people = append(f.people, &p)
}

func (f *fakePeer) person(anchor string) *Person {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.people {
		if p.Anchor == anchor {
			c := *p
			return &c
		}
	}
	return nil
}

func (f *fakePeer) deletePerson(anchor string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, p := range f.people {
		if p.Anchor == anchor {
			f.people = append(f.people[:i], f.people[i+1:]...)
			f.pos = map[string]int{}
			for j, q := range f.people {
				f.pos[q.Anchor] = j
			}
			f.log = append(f.log, Entry{Kind: KindPerson, Anchor: anchor, Deleted: true})
			return
		}
	}
}

func (f *fakePeer) emit(ctx context.Context, entries []Entry, fn func(Entry) error) error {
	for i, en := range entries {
		if f.failRead != nil && i >= f.failAfter {
			return f.failRead
		}
		if err := fn(en); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakePeer) Full(ctx context.Context, fn func(Entry) error) (string, error) {
	f.mu.Lock()
	if f.started != nil {
		close(f.started)
		f.started = nil
	}
	block := f.block
	var entries []Entry
	for i := range f.depts {
		d := f.depts[i]
		entries = append(entries, Entry{Kind: KindDepartment, Anchor: d.Anchor, Department: &d, Source: "dept/" + d.Anchor})
	}
	for _, p := range f.people {
		c := *p
		entries = append(entries, Entry{Kind: KindPerson, Anchor: c.Anchor, Person: &c, Source: "person/" + c.Anchor})
	}
	for i := range f.groups {
		g := f.groups[i]
		entries = append(entries, Entry{Kind: KindGroup, Anchor: g.Anchor, Group: &g, Source: "group/" + g.Anchor})
	}
	entries = append(entries, f.extra...)
	cur := strconv.Itoa(len(f.log))
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	return cur, f.emit(ctx, entries, fn)
}

func (f *fakePeer) Changes(ctx context.Context, cursor string, fn func(Entry) error) (string, error) {
	f.mu.Lock()
	if f.expired {
		f.mu.Unlock()
		return "", ErrCursorExpired
	}
	n, err := strconv.Atoi(cursor)
	if err != nil || n > len(f.log) {
		f.mu.Unlock()
		return "", ErrCursorExpired
	}
	entries := append([]Entry(nil), f.log[n:]...)
	entries = append(entries, f.extra...)
	cur := strconv.Itoa(len(f.log))
	f.mu.Unlock()
	return cur, f.emit(ctx, entries, fn)
}

// fakeWriter is a writable fakePeer.
type fakeWriter struct{ *fakePeer }

var _ PeerWriter = fakeWriter{}

func (w fakeWriter) UpdatePerson(ctx context.Context, anchor string, fields map[string]string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failUpdate != nil {
		return w.failUpdate
	}
	w.updates = append(w.updates, fields)
	for _, p := range w.people {
		if p.Anchor == anchor {
			c := *p
			for k, v := range fields {
				switch k {
				case "mail":
					c.Mail = v
				case "mobile":
					c.Mobile = v
				case "display_name":
					c.DisplayName = v
				}
			}
			w.setPersonLocked(c)
			return nil
		}
	}
	return errors.New("no such person")
}

var _ PeerCreator = fakeWriter{}

// CreatePerson adds the person under a new anchor "new<N>".
func (w fakeWriter) CreatePerson(ctx context.Context, p Person) (string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failCreate != nil {
		return "", w.failCreate
	}
	w.created = append(w.created, p)
	p.Anchor = "new" + strconv.Itoa(len(w.created))
	w.setPersonLocked(p)
	return p.Anchor, nil
}

// fakeProvisioner records what it is asked.
type fakeProvisioner struct {
	mu    sync.Mutex
	specs []AccountSpec
}

func (p *fakeProvisioner) EnsureAccount(ctx context.Context, a AccountSpec) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.specs = append(p.specs, a)
	return nil
}
