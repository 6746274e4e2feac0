package directory

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/govhub/govhub/internal/sqldb"
	"github.com/govhub/govhub/internal/testdb"
)

func names(vs []PersonView) string {
	var s []string
	for _, v := range vs {
		s = append(s, v.DisplayName)
	}
	return strings.Join(s, ",")
}

func TestSearch(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		e, _ := newTestEngine(db, Config{})
		f := newFake("ldap")
		chart(f)
		f.setPerson(Person{Anchor: "u7", DisplayName: "张山", Mail: "zhangshan@gov.example", Status: StatusLeft})
		f.setPerson(Person{Anchor: "u8", DisplayName: "100%_人", Mail: "pct@gov.example"})
		mustRun(t, e, f, RunOptions{})
		s := e.Store()
		for _, c := range []struct{ q, want string }{
			{"zs", "张三"}, {"ZhangSan", "张三"}, {"张", "张三"}, {"主任", "张三"}, {"13800000001", "张三"},
			{"lisi@gov", "李四"}, {"ww", "王五"},
			// Tree order: 市政府 (王五) before its first child 办公室 (张三),
			// then 财政局 (李四); no department sorts last.
			{"gov.example", "王五,张三,李四,100%_人"},
			// LIKE wildcards in a query are literals.
			{"%", "100%_人"}, {"_", "100%_人"}, {"z%s", ""},
			// Several words must all match.
			{"zs 主任", "张三"}, {"zs 科员", ""},
		} {
			got, err := s.Search(ctx, c.q, 20)
			if err != nil {
				t.Fatal(err)
			}
			if names(got) != c.want {
				t.Errorf("Search(%q) = %q, want %q", c.q, names(got), c.want)
			}
		}
		got, _ := s.Search(ctx, "zs", 1)
		if len(got) != 1 || len(got[0].Departments) != 1 || got[0].Departments[0].Name != "办公室" || got[0].ComposeURL != fmt.Sprintf("/compose?to=%d", got[0].ID) {
			t.Fatalf("view: %+v", got)
		}
	})
}

func TestAddressBookHTTP(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		e, _ := newTestEngine(db, Config{})
		f := newFake("ldap")
		chart(f)
		mustRun(t, e, f, RunOptions{})
		srv := httptest.NewServer(AddressBookHandler(e.Store()))
		defer srv.Close()
		get := func(path string, wantCode int, v any) {
			t.Helper()
			resp, err := http.Get(srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != wantCode {
				t.Fatalf("GET %s: %d, want %d", path, resp.StatusCode, wantCode)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("GET %s: content type %q", path, ct)
			}
			if v != nil {
				if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
					t.Fatal(err)
				}
			}
		}
		var tree struct{ Departments []*DeptNode }
		get("/departments", 200, &tree)
		if len(tree.Departments) != 1 || tree.Departments[0].Name != "市政府" || len(tree.Departments[0].Children) != 2 ||
			tree.Departments[0].Children[0].Name != "办公室" || tree.Departments[0].Children[1].Name != "财政局" {
			t.Fatalf("tree: %+v", tree.Departments)
		}
		var res struct{ People []PersonView }
		get("/people?q=zs", 200, &res)
		if names(res.People) != "张三" {
			t.Fatalf("search: %+v", res.People)
		}
		id := res.People[0].ID
		office := tree.Departments[0].Children[0].ID
		get(fmt.Sprintf("/people?dept=%d", office), 200, &res)
		if names(res.People) != "张三" {
			t.Fatalf("department: %+v", res.People)
		}
		var card PersonView
		get(fmt.Sprintf("/people/%d", id), 200, &card)
		if card.DisplayName != "张三" || card.ComposeURL != fmt.Sprintf("/compose?to=%d", id) || card.Mail != "zhangsan@gov.example" {
			t.Fatalf("card: %+v", card)
		}
		var e1 map[string]string
		get("/people/999999", 404, &e1)
		if e1["error"] != "not found" {
			t.Fatalf("404 body %v", e1)
		}
		get("/people/abc", 404, nil)
		get("/people?q=a&limit=-1", 400, nil)
		get("/people?dept=x", 400, nil)
		get("/people", 400, nil)
	})
}

var (
	surnames = []rune("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
	given    = []rune("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红娥玲芬燕彬鹏辉建国庆文斌志宏云飞海波宁凯峰琳雪梅兰婷慧颖晨浩宇轩")
)

// BenchmarkSearch measures Search over 200,000 generated people in 300
// departments (SQLite; PostgreSQL too when configured). Target ≤ 20 ms.
func BenchmarkSearch(b *testing.B) {
	for _, be := range testdb.Backends(b) {
		b.Run(be.Name, func(b *testing.B) {
			ctx := context.Background()
			db, err := sqldb.Open(ctx, be.URL(b), sqldb.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Migrate(ctx, nil); err != nil {
				b.Fatal(err)
			}
			s := NewStore(db, nil)
			fillPeople(b, s, 200_000, 300)
			queries := []string{"zs", "zhangwei", "王芳", "13800001234", "u12345@", "主任", "lxm"}
			for _, q := range queries {
				b.Run(q, func(b *testing.B) {
					for b.Loop() {
						if _, err := s.Search(ctx, q, 50); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		})
	}
}

func fillPeople(b *testing.B, s *Store, n, depts int) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	titles := []string{"科员", "主任", "副主任", "处长", "副处长", "局长", "司机", ""}
	now := time.Now()
	start := time.Now()
	err := s.db.InTx(ctx, func(sqltx *sqlx.Tx) error {
		tx := newPtx(s.db, sqltx)
		defer tx.close()
		var ids []int64
		for i := 0; i < depts; i++ {
			d := &Dept{Name: fmt.Sprintf("部门%d", i), Order: i, Status: StatusActive}
			if i > 0 {
				d.ParentID = ids[rng.IntN(len(ids))]
			}
			id, err := insertDept(ctx, tx, d, now)
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		for i := 0; i < n; i++ {
			name := string(surnames[rng.IntN(len(surnames))]) + string(given[rng.IntN(len(given))])
			if rng.IntN(2) == 0 {
				name += string(given[rng.IntN(len(given))])
			}
			p := &PersonRecord{DisplayName: name, Title: titles[rng.IntN(len(titles))], Mail: fmt.Sprintf("u%d@gov.example", i),
				OfficePhone: fmt.Sprintf("010-%08d", rng.IntN(1e8)), Mobile: fmt.Sprintf("138%08d", rng.IntN(1e8)), Status: StatusActive}
			p.PinyinFull, p.PinyinInitials = Pinyin(name)
			p.sortKey = rng.IntN(depts)
			id, err := insertPerson(ctx, tx, p, now)
			if err != nil {
				return err
			}
			if err := setMemberships(ctx, tx, id, []MemberOf{{DeptID: ids[p.sortKey]}}, true); err != nil {
				return err
			}
		}
		return bumpGeneration(ctx, sqltx)
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("filled %d people in %v", n, time.Since(start))
}
