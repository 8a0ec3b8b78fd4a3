package app

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/groupbridge/groupbridge/config"
	"github.com/groupbridge/groupbridge/media/prompt"
)

// loadPrompts builds the prompts of every language the configuration
// speaks (config.Languages) as one prompt.Bundle, the default language's
// set first: built-in sets with prompts.dir/<name>.wav over the default
// language and prompts.dir/<lang>/<name>.wav over lang (the more specific
// last), and recorded sets of languages without built-ins. An error names
// the key that asked for the language, and the file.
func loadPrompts(cfg *config.Config, log *slog.Logger) (*prompt.Set, error) {
	var sets []*prompt.Set
	var errs []error // every language's problem, not only the first
	for _, lang := range cfg.Languages() {
		s, err := loadLanguage(cfg, lang, log)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q: %w", cfg.LanguageKey(lang), lang, err))
			continue
		}
		sets = append(sets, s)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return prompt.Bundle(sets[0], sets[1:]...), nil
}

// loadLanguage builds one language's set.
func loadLanguage(cfg *config.Config, lang string, log *slog.Logger) (*prompt.Set, error) {
	dir := cfg.Prompts.Dir
	if !prompt.IsBuiltin(lang) {
		if dir == "" {
			return nil, prompt.ErrUnknownLanguage
		}
		s, err := prompt.Recorded(lang, filepath.Join(dir, lang))
		if err == nil {
			log.Info("recorded prompts loaded", "language", lang, "dir", filepath.Join(dir, lang))
		}
		return s, err
	}
	s, err := prompt.Builtin(lang)
	if err != nil || dir == "" {
		return s, err
	}
	if lang == cfg.Prompts.Language {
		n, err := s.LoadDir(dir)
		if err != nil {
			return nil, err // LoadDir names prompts.dir and the file
		}
		log.Info("operator prompts loaded", "language", lang, "dir", dir, "count", n)
	}
	sub := filepath.Join(dir, lang)
	if fi, err := os.Stat(sub); err == nil && fi.IsDir() {
		n, err := s.LoadDir(sub)
		if err != nil {
			return nil, err
		}
		log.Info("operator prompts loaded", "language", lang, "dir", sub, "count", n)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("prompts.dir: %w", err)
	}
	return s, nil
}

// CheckPrompts loads the prompts cfg asks for, as the bridge would, and
// says for each language directory in prompts.dir which prompts it does
// not have (so the built-in voice still speaks them) in notes. An
// incomplete set of a language without built-ins, an unknown name or a
// bad file is the error. For `groupbridge config check`.
func CheckPrompts(cfg *config.Config) (notes []string, err error) {
	if _, err := loadPrompts(cfg, slog.New(slog.DiscardHandler)); err != nil {
		return nil, err
	}
	if cfg.Prompts.Dir == "" {
		return nil, nil
	}
	for _, lang := range cfg.Languages() {
		sub := filepath.Join(cfg.Prompts.Dir, lang)
		if fi, err := os.Stat(sub); err != nil || !fi.IsDir() || !prompt.IsBuiltin(lang) {
			continue
		}
		entries, err := os.ReadDir(sub)
		if err != nil {
			return nil, fmt.Errorf("prompts.dir: %w", err)
		}
		have := map[string]bool{}
		for _, e := range entries {
			if ext := filepath.Ext(e.Name()); strings.EqualFold(ext, ".wav") {
				have[strings.TrimSuffix(e.Name(), ext)] = true
			}
		}
		var missing []string
		for _, name := range prompt.NamesOf(lang) {
			if !have[name] && name != prompt.HoldMusic {
				missing = append(missing, name)
			}
		}
		if len(missing) > 0 {
			notes = append(notes, fmt.Sprintf("%s: %d of %d prompts recorded; the built-in voice says the others: %v",
				sub, len(prompt.NamesOf(lang))-1-len(missing), len(prompt.NamesOf(lang))-1, missing))
		}
	}
	return notes, nil
}
