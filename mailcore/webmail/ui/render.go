package ui

import (
	"html/template"
	"time"

	"github.com/govhub/govhub/mailcore"
)

var errNotFound = mailcore.ErrNotFound

// pageNames are the page templates; each is parsed with the layout and
// the shared row template.
var pageNames = []string{"list", "view", "compose", "search", "folders", "settings", "error"}

// rowData is one message row with the page around it.
type rowData struct {
	P      *page
	R      row
	Select bool
}

var funcs = template.FuncMap{
	"iso": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.Format(time.RFC3339)
	},
	"rowCtx": func(p *page, r row, sel bool) rowData { return rowData{P: p, R: r, Select: sel} },
	"size":   func(L locale, n int64) string { return formatSize(L, n) },
}

func parseTemplates() map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		t := template.Must(template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/row.html", "templates/"+name+".html"))
		out[name] = t
	}
	return out
}
