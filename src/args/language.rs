//! Input languages, as gcc and clang name them for `-x` and infer them from
//! file name extensions.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The language of an input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    C,
    Cxx,
    ObjectiveC,
    ObjectiveCxx,
    PreprocessedC,
    PreprocessedCxx,
    PreprocessedObjectiveC,
    PreprocessedObjectiveCxx,
    /// `.s`: assembled without preprocessing.
    Assembler,
    /// `.S`, `.sx`: preprocessed, then assembled.
    AssemblerWithCpp,
    /// Headers, compiled into precompiled headers.
    Header,
    /// Any other language (Fortran, CUDA, ...), or a linker input.
    Other,
}

impl Language {
    /// The language named by `-x NAME`; `None` for `-x none`, which returns
    /// to choosing by extension.
    pub fn from_x_name(name: &OsStr) -> Option<Language> {
        let language = match name.as_bytes() {
            b"none" => return None,
            b"c" => Language::C,
            b"c++" => Language::Cxx,
            b"objective-c" => Language::ObjectiveC,
            b"objective-c++" => Language::ObjectiveCxx,
            b"cpp-output" | b"c-cpp-output" => Language::PreprocessedC,
            b"c++-cpp-output" => Language::PreprocessedCxx,
            b"objective-c-cpp-output" | b"objc-cpp-output" => Language::PreprocessedObjectiveC,
            b"objective-c++-cpp-output" | b"objc++-cpp-output" => Language::PreprocessedObjectiveCxx,
            b"assembler" => Language::Assembler,
            b"assembler-with-cpp" => Language::AssemblerWithCpp,
            name if name.ends_with(b"-header") => Language::Header,
            _ => Language::Other,
        };
        Some(language)
    }

    /// The language gcc and clang infer from the file name. A C++ driver
    /// (`g++`, `clang++`) compiles `.c` and `.i` files as C++.
    pub fn from_file_name(name: &OsStr, cplusplus_driver: bool) -> Language {
        let language = match extension(name) {
            Some(b"c") => Language::C,
            Some(b"i") => Language::PreprocessedC,
            Some(b"ii") => Language::PreprocessedCxx,
            Some(b"cc" | b"cp" | b"cxx" | b"cpp" | b"CPP" | b"c++" | b"C") => Language::Cxx,
            Some(b"m") => Language::ObjectiveC,
            Some(b"mi") => Language::PreprocessedObjectiveC,
            Some(b"mm" | b"M") => Language::ObjectiveCxx,
            Some(b"mii") => Language::PreprocessedObjectiveCxx,
            Some(b"s") => Language::Assembler,
            Some(b"S" | b"sx") => Language::AssemblerWithCpp,
            Some(b"h" | b"hh" | b"H" | b"hp" | b"hxx" | b"hpp" | b"HPP" | b"h++" | b"tcc") => Language::Header,
            _ => Language::Other,
        };
        match (language, cplusplus_driver) {
            (Language::C, true) => Language::Cxx,
            (Language::PreprocessedC, true) => Language::PreprocessedCxx,
            (other, _) => other,
        }
    }

    /// The language of the preprocessed text, for the C family.
    pub fn preprocessed(self) -> Option<Language> {
        match self {
            Language::C | Language::PreprocessedC => Some(Language::PreprocessedC),
            Language::Cxx | Language::PreprocessedCxx => Some(Language::PreprocessedCxx),
            Language::ObjectiveC | Language::PreprocessedObjectiveC => Some(Language::PreprocessedObjectiveC),
            Language::ObjectiveCxx | Language::PreprocessedObjectiveCxx => Some(Language::PreprocessedObjectiveCxx),
            Language::Assembler | Language::AssemblerWithCpp | Language::Header | Language::Other => None,
        }
    }

    /// True for languages whose input is already preprocessed.
    pub fn is_preprocessed(self) -> bool {
        matches!(
            self,
            Language::PreprocessedC
                | Language::PreprocessedCxx
                | Language::PreprocessedObjectiveC
                | Language::PreprocessedObjectiveCxx
        )
    }

    /// The name for `-x`. gcc and clang both accept these spellings.
    pub fn x_name(self) -> &'static str {
        match self {
            Language::C => "c",
            Language::Cxx => "c++",
            Language::ObjectiveC => "objective-c",
            Language::ObjectiveCxx => "objective-c++",
            Language::PreprocessedC => "cpp-output",
            Language::PreprocessedCxx => "c++-cpp-output",
            Language::PreprocessedObjectiveC => "objective-c-cpp-output",
            Language::PreprocessedObjectiveCxx => "objective-c++-cpp-output",
            Language::Assembler => "assembler",
            Language::AssemblerWithCpp => "assembler-with-cpp",
            Language::Header => "c-header",
            Language::Other => "other",
        }
    }

    /// The extension of a preprocessed file of this language. Stock distccd
    /// names the file it compiles after the input's extension, with the same
    /// mapping (`.c` to `.i`, `.cpp` to `.ii`, `.m` to `.mi`, `.mm` to `.mii`).
    pub fn preprocessed_extension(self) -> &'static str {
        match self.preprocessed() {
            Some(Language::PreprocessedCxx) => "ii",
            Some(Language::PreprocessedObjectiveC) => "mi",
            Some(Language::PreprocessedObjectiveCxx) => "mii",
            _ => "i",
        }
    }
}

/// The text after the last dot of the file name, if any.
pub fn extension(name: &OsStr) -> Option<&[u8]> {
    let file_name = Path::new(name).file_name()?.as_bytes();
    let dot = file_name.iter().rposition(|&b| b == b'.')?;
    Some(&file_name[dot + 1..]).filter(|ext| !ext.is_empty())
}

/// Extensions that stock distcc 3.4 (`dcc_is_source`) accepts as the name
/// of the source file, on the client and on the server.
pub const STOCK_SOURCE_EXTENSIONS: &[&[u8]] =
    &[b"i", b"ii", b"c", b"cc", b"cpp", b"cxx", b"cp", b"c++", b"C", b"m", b"mm", b"mi", b"mii", b"M"];

/// True when stock distcc 3.4 treats the name as a source file.
pub fn is_stock_source_name(name: &OsStr) -> bool {
    extension(name).is_some_and(|ext| STOCK_SOURCE_EXTENSIONS.contains(&ext))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by_name(name: &str) -> Language {
        Language::from_file_name(OsStr::new(name), false)
    }

    #[test]
    fn extensions_follow_gcc() {
        assert_eq!(by_name("a.c"), Language::C);
        assert_eq!(by_name("dir.x/a.C"), Language::Cxx);
        assert_eq!(by_name("a.cc"), Language::Cxx);
        assert_eq!(by_name("a.c++"), Language::Cxx);
        assert_eq!(by_name("a.ii"), Language::PreprocessedCxx);
        assert_eq!(by_name("a.m"), Language::ObjectiveC);
        assert_eq!(by_name("a.M"), Language::ObjectiveCxx);
        assert_eq!(by_name("a.S"), Language::AssemblerWithCpp);
        assert_eq!(by_name("a.s"), Language::Assembler);
        assert_eq!(by_name("a.h"), Language::Header);
        assert_eq!(by_name("a.o"), Language::Other);
        assert_eq!(by_name("dir.c/a"), Language::Other);
        assert_eq!(by_name("a."), Language::Other);
    }

    #[test]
    fn cplusplus_driver_compiles_c_as_cxx() {
        assert_eq!(Language::from_file_name(OsStr::new("a.c"), true), Language::Cxx);
        assert_eq!(Language::from_file_name(OsStr::new("a.i"), true), Language::PreprocessedCxx);
        assert_eq!(Language::from_file_name(OsStr::new("a.m"), true), Language::ObjectiveC);
    }

    #[test]
    fn x_names_round_trip() {
        for language in [
            Language::C,
            Language::Cxx,
            Language::ObjectiveC,
            Language::ObjectiveCxx,
            Language::PreprocessedC,
            Language::PreprocessedCxx,
            Language::PreprocessedObjectiveC,
            Language::PreprocessedObjectiveCxx,
            Language::Assembler,
            Language::AssemblerWithCpp,
        ] {
            assert_eq!(Language::from_x_name(OsStr::new(language.x_name())), Some(language));
        }
        assert_eq!(Language::from_x_name(OsStr::new("none")), None);
        assert_eq!(Language::from_x_name(OsStr::new("c++-header")), Some(Language::Header));
        assert_eq!(Language::from_x_name(OsStr::new("f95")), Some(Language::Other));
    }

    #[test]
    fn preprocessed_extensions() {
        assert_eq!(Language::C.preprocessed_extension(), "i");
        assert_eq!(Language::Cxx.preprocessed_extension(), "ii");
        assert_eq!(Language::ObjectiveC.preprocessed_extension(), "mi");
        assert_eq!(Language::ObjectiveCxx.preprocessed_extension(), "mii");
    }
}
