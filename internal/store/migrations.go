package store

import (
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

// Migration is one schema change of a store: migrations/NNNN_name.sql, applied in order.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations reads the migrations of a store's embedded directory. Their numbers must run
// 1, 2, 3, … without a gap, so that a schema version names exactly what was applied.
func Migrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for i, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v != i+1 {
			return nil, fmt.Errorf("migration %s: want the number %04d", e.Name(), i+1)
		}
		b, err := fs.ReadFile(fsys, dir+"/"+e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: e.Name(), SQL: string(b)})
	}
	return ms, nil
}
