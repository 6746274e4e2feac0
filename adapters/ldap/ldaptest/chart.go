package ldaptest

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// Departments of the generated chart, parents before children, by RDN
// value; DN gives each one's DN.
var Departments = []struct{ OU, Parent string }{
	{"市政府", ""},
	{"办公厅", "市政府"},
	{"财政局", "市政府"},
	{"预算处", "财政局"},
	{"教育局", "市政府"},
}

// DeptDN is the DN of a department of the chart.
func DeptDN(ou string) string {
	for _, d := range Departments {
		if d.OU == ou {
			if d.Parent == "" {
				return "ou=" + ou + "," + Suffix
			}
			return "ou=" + ou + "," + DeptDN(d.Parent)
		}
	}
	panic("ldaptest: no department " + ou)
}

// Person is one generated person.
type Person struct {
	UID, CN, Dept, Mail, Title, EmployeeNo, Mobile, Phone, Order string
	// RawCN, when set, is written base64-encoded instead of CN (for
	// control characters).
	RawCN []byte
	// RawAudio, when set, is the audio attribute (octets, not checked by slapd).
	RawAudio []byte
}

// DN of the person.
func (p Person) DN() string { return "uid=" + p.UID + "," + DeptDN(p.Dept) }

// People of the chart: clean ones with Chinese names, then the hostile
// ones the tests name.
var People = []Person{
	{UID: "zhangsan", CN: "张三", Dept: "办公厅", Mail: "zhangsan@gov.example", Title: "主任", EmployeeNo: "E001", Mobile: "13800000001", Phone: "010-1001", Order: "1"},
	{UID: "lisi", CN: "李四", Dept: "办公厅", Mail: "lisi@gov.example", Title: "副主任", EmployeeNo: "E002", Mobile: "13800000002", Order: "2"},
	{UID: "ouyangnana", CN: "欧阳娜娜", Dept: "财政局", Mail: "ouyangnana@gov.example", Title: "局长", EmployeeNo: "E003"},
	{UID: "wangwu", CN: "王五", Dept: "预算处", Mail: "wangwu@gov.example", Title: "处长", EmployeeNo: "E004"},
	{UID: "zhaoliu", CN: "赵六", Dept: "预算处", Mail: "zhaoliu@gov.example", EmployeeNo: "E005"},
	{UID: "sunqi", CN: "孙七", Dept: "教育局", Mail: "sunqi@gov.example", EmployeeNo: "E006"},
	{UID: "zhouba", CN: "周八", Dept: "教育局", Mail: "zhouba@gov.example", EmployeeNo: "E007"},
	{UID: "zhugeliang", CN: "诸葛亮", Dept: "市政府", Mail: "zhugeliang@gov.example", Title: "市长", EmployeeNo: "E008"},
	// Hostile: no mail.
	{UID: "qianyi", CN: "钱一", Dept: "教育局", EmployeeNo: "E009"},
	// Hostile: the same mail as 张三.
	{UID: "zhangsan2", CN: "张三", Dept: "财政局", Mail: "zhangsan@gov.example", EmployeeNo: "E010"},
	// Hostile: control characters in cn.
	{UID: "ctrl", RawCN: []byte("坏\x07名\x1b[0m"), Dept: "教育局", Mail: "ctrl@gov.example", EmployeeNo: "E011"},
	// Hostile: an order that is not a number (an undecodable value).
	{UID: "badorder", CN: "吴九", Dept: "教育局", Mail: "wujiu@gov.example", EmployeeNo: "E012", Order: "第一"},
	// Hostile: a value that is not UTF-8. slapd refuses that in directory
	// strings, so it sits in audio (octet syntax); tests map rank to audio.
	{UID: "badutf8", CN: "冯十一", Dept: "办公厅", Mail: "feng@gov.example", EmployeeNo: "E013", RawAudio: []byte{0xff, 0xfe, 0x41}},
	// Hostile: no employee number, the anchor of the anchor test.
	{UID: "noemp", CN: "郑十", Dept: "办公厅", Mail: "zhengshi@gov.example"},
}

// ChartLDIF renders the departments and people, then extra generated
// people ("员工N", uid userN) spread over the departments.
func ChartLDIF(extra int) string {
	var b strings.Builder
	for _, d := range Departments {
		fmt.Fprintf(&b, "dn: %s\nobjectClass: organizationalUnit\nou: %s\n\n", DeptDN(d.OU), d.OU)
	}
	for _, p := range People {
		writePerson(&b, p)
	}
	for i := range extra {
		writePerson(&b, Person{
			UID: fmt.Sprintf("user%d", i), CN: fmt.Sprintf("员工%d", i), Dept: Departments[i%len(Departments)].OU,
			Mail: fmt.Sprintf("user%d@gov.example", i), EmployeeNo: fmt.Sprintf("G%07d", i), Title: "科员",
		})
	}
	return b.String()
}

func writePerson(b *strings.Builder, p Person) {
	fmt.Fprintf(b, "dn: %s\nobjectClass: inetOrgPerson\nuid: %s\n", p.DN(), p.UID)
	if p.RawCN != nil {
		enc := base64.StdEncoding.EncodeToString(p.RawCN)
		fmt.Fprintf(b, "cn:: %s\nsn:: %s\n", enc, enc)
	} else {
		fmt.Fprintf(b, "cn: %s\nsn: %s\n", p.CN, p.CN)
	}
	if p.RawAudio != nil {
		fmt.Fprintf(b, "audio:: %s\n", base64.StdEncoding.EncodeToString(p.RawAudio))
	}
	for _, kv := range [][2]string{{"mail", p.Mail}, {"title", p.Title}, {"employeeNumber", p.EmployeeNo}, {"mobile", p.Mobile}, {"telephoneNumber", p.Phone}, {"description", p.Order}} {
		if kv[1] != "" {
			fmt.Fprintf(b, "%s: %s\n", kv[0], kv[1])
		}
	}
	b.WriteString("\n")
}

// WideChartLDIF is ChartLDIF(extra) with depts more departments (部门N,
// half of them under 市政府, the others one level further down) over
// which the extra people are spread with the chart's five: the shape of
// the benchmark (200,000 people, ~300 departments).
func WideChartLDIF(extra, depts int) string {
	var b strings.Builder
	for _, d := range Departments {
		fmt.Fprintf(&b, "dn: %s\nobjectClass: organizationalUnit\nou: %s\n\n", DeptDN(d.OU), d.OU)
	}
	dns := make([]string, 0, len(Departments)+depts)
	for _, d := range Departments {
		dns = append(dns, DeptDN(d.OU))
	}
	top := DeptDN(Departments[0].OU)
	for i := range depts {
		parent := top
		if i%2 == 1 {
			parent = dns[len(Departments)+i-1] // the previous, a top one
		}
		dn := fmt.Sprintf("ou=部门%d,%s", i, parent)
		fmt.Fprintf(&b, "dn: %s\nobjectClass: organizationalUnit\nou: 部门%d\n\n", dn, i)
		dns = append(dns, dn)
	}
	for _, p := range People {
		writePerson(&b, p)
	}
	for i := range extra {
		fmt.Fprintf(&b, "dn: uid=user%d,%s\nobjectClass: inetOrgPerson\nuid: user%d\ncn: 员工%d\nsn: 员工%d\nmail: user%d@gov.example\ntitle: 科员\nemployeeNumber: G%07d\n\n",
			i, dns[i%len(dns)], i, i, i, i, i)
	}
	return b.String()
}

// Groups of GroupsLDIF, by cn; GroupDN gives each one's DN.
const (
	GroupAll   = "办公厅全体" // groupOfNames: 张三, 李四, nested 领导小组
	GroupLead  = "领导小组"  // groupOfUniqueNames: 诸葛亮, 欧阳娜娜, a DN naming nothing, nested 办公厅全体 (a cycle)
	GroupMixed = "杂项组"   // groupOfNames: 王五, a department, the person with control characters in cn
)

// GhostDN is a member of GroupLead that names no entry.
var GhostDN = "uid=ghost," + DeptDN("办公厅")

// GroupDN is the DN of a group of GroupsLDIF.
func GroupDN(cn string) string { return "cn=" + cn + "," + Suffix }

// PersonByUID is the chart's person with uid.
func PersonByUID(uid string) Person {
	for _, p := range People {
		if p.UID == uid {
			return p
		}
	}
	panic("ldaptest: no person " + uid)
}

// GroupsLDIF renders the chart's groups (to load after ChartLDIF),
// hostile ones included: a member DN that does not exist, a cycle of
// nested groups, a member that is a department, a member whose own entry
// is broken, a uniqueMember with the optional UID suffix. The group with
// a mail address carries extensibleObject, as sites use an auxiliary
// class for it.
func GroupsLDIF() string {
	return fmt.Sprintf(`dn: %s
objectClass: groupOfNames
objectClass: extensibleObject
cn: %s
description: 办公厅所有人员
mail: bgt-all@gov.example
member: %s
member: %s
member: %s

dn: %s
objectClass: groupOfUniqueNames
cn: %s
uniqueMember: %s
uniqueMember: %s#'0101'B
uniqueMember: %s
uniqueMember: %s

dn: %s
objectClass: groupOfNames
cn: %s
member: %s
member: %s
member: %s

`, GroupDN(GroupAll), GroupAll, PersonByUID("zhangsan").DN(), PersonByUID("lisi").DN(), GroupDN(GroupLead),
		GroupDN(GroupLead), GroupLead, PersonByUID("zhugeliang").DN(), PersonByUID("ouyangnana").DN(), GhostDN, GroupDN(GroupAll),
		GroupDN(GroupMixed), GroupMixed, PersonByUID("wangwu").DN(), DeptDN("教育局"), PersonByUID("ctrl").DN())
}
