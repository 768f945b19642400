//! Plain-text tables: left-aligned columns separated by two spaces.

/// A table under construction.
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table { headers: headers.iter().map(|header| header.to_string()).collect(), rows: Vec::new() }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text, one line per row, each ending in a newline.
    pub fn render(&self) -> String {
        let mut widths = Vec::new();
        self.render_block(&mut widths, true)
    }

    /// The rows so far as text (after the header line when `header`), with
    /// columns at least `widths` wide; `widths` grows to fit these rows, so
    /// a table rendered block by block (see [`StreamTable`]) only ever
    /// widens.
    pub fn render_block(&self, widths: &mut Vec<usize>, header: bool) -> String {
        let columns = self.headers.len();
        widths.resize(columns, 0);
        for (index, header) in self.headers.iter().enumerate() {
            widths[index] = widths[index].max(header.chars().count());
        }
        for row in &self.rows {
            for (index, cell) in row.iter().enumerate().take(columns) {
                widths[index] = widths[index].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let mut line = |cells: &[String]| {
            let mut text = String::new();
            for (index, cell) in cells.iter().enumerate().take(columns) {
                if index + 1 == columns.min(cells.len()) {
                    text.push_str(cell);
                } else {
                    let padding = widths[index].saturating_sub(cell.chars().count());
                    text.push_str(cell);
                    text.push_str(&" ".repeat(padding + 2));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        if header {
            line(&self.headers);
        }
        for row in &self.rows {
            line(row);
        }
        out
    }
}

/// Rows per block of a [`StreamTable`].
pub const STREAM_BLOCK_ROWS: usize = 1024;

/// A table printed as it is filled, a block of rows at a time: memory holds
/// one block, whatever the number of rows. Columns are as wide as the
/// widest cell seen so far.
pub struct StreamTable {
    table: Table,
    widths: Vec<usize>,
    header_written: bool,
}

impl StreamTable {
    pub fn new(headers: &[&str]) -> StreamTable {
        StreamTable { table: Table::new(headers), widths: Vec::new(), header_written: false }
    }

    /// Adds a row; returns a block of text to print when one is complete.
    pub fn row(&mut self, cells: Vec<String>) -> Option<String> {
        self.table.row(cells);
        (self.table.rows.len() >= STREAM_BLOCK_ROWS).then(|| self.flush())
    }

    /// The rows not printed yet (and the header, if nothing was printed).
    pub fn flush(&mut self) -> String {
        let text = self.table.render_block(&mut self.widths, !self.header_written);
        self.header_written = true;
        self.table.rows.clear();
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align() {
        let mut table = Table::new(&["a", "bb"]);
        table.row(vec!["long".into(), "x".into()]);
        assert_eq!(table.render(), "a     bb\nlong  x\n");
    }

    #[test]
    fn a_streamed_table_prints_blocks_that_only_widen() {
        let mut table = StreamTable::new(&["n", "text"]);
        let mut out = String::new();
        for index in 0..STREAM_BLOCK_ROWS + 1 {
            if let Some(block) = table.row(vec![index.to_string(), "x".into()]) {
                out.push_str(&block);
            }
        }
        out.push_str(&table.flush());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), STREAM_BLOCK_ROWS + 2);
        assert_eq!(lines[0], "n     text");
        assert_eq!(lines[1], "0     x");
        assert_eq!(*lines.last().unwrap(), "1024  x");
    }
}
