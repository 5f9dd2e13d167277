//! Analyzer rule tables: each check with a case that fires and the nearest case that
//! does not, from multi-document YAML with Kubernetes objects.
