import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;
import javax.xml.XMLConstants;
import javax.xml.parsers.DocumentBuilder;
import javax.xml.parsers.DocumentBuilderFactory;
import javax.xml.transform.OutputKeys;
import javax.xml.transform.Transformer;
import javax.xml.transform.TransformerFactory;
import javax.xml.transform.dom.DOMSource;
import javax.xml.transform.stream.StreamResult;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.Node;
import org.w3c.dom.NodeList;

/**
 * Writes the two reports CI reads from the ones {@code mvn verify} leaves under target/: junit.xml
 * (every Surefire suite in one file) and coverage.xml (JaCoCo's line coverage in Cobertura XML).
 *
 * <p>{@code make test} runs it with the JDK's source launcher: {@code java tools/TestReports.java}.
 * It exits with 1 when a test failed, so that Maven can keep going to the coverage report, or when
 * the line coverage is below the threshold given as its argument (COVERAGE_THRESHOLD).
 */
public final class TestReports {

  private static final Path SUREFIRE = Path.of("target", "surefire-reports");
  private static final Path JACOCO = Path.of("target", "site", "jacoco", "jacoco.xml");
  private static final Path SOURCES = Path.of("src", "main", "java");

  private TestReports() {}

  public static void main(String[] args) throws Exception {
    List<Path> suites = surefireSuites();
    if (suites.isEmpty() || !Files.isRegularFile(JACOCO)) {
      System.err.println("No reports under target/: run `mvn verify` (make test) first.");
      System.exit(2);
    }
    int unsuccessful = writeJunit(suites, Path.of("junit.xml"));
    double lineRate = writeCobertura(JACOCO, Path.of("coverage.xml"));
    if (unsuccessful > 0) {
      System.err.println(
          unsuccessful + " test(s) failed: see junit.xml or target/surefire-reports/");
      System.exit(1);
    }
    double minimum = args.length > 0 ? Double.parseDouble(args[0]) : 0;
    if (lineRate * 100 < minimum) {
      System.err.printf(
          Locale.ROOT,
          "line coverage %.2f%% is below COVERAGE_THRESHOLD (%s%%)%n",
          lineRate * 100,
          args[0]);
      System.exit(1);
    }
  }

  private static List<Path> surefireSuites() throws IOException {
    if (!Files.isDirectory(SUREFIRE)) {
      return List.of();
    }
    try (Stream<Path> files = Files.list(SUREFIRE)) {
      return files
          .filter(file -> file.getFileName().toString().matches("TEST-.*\\.xml"))
          .sorted()
          .toList();
    }
  }

  /** One {@code <testsuites>} with every suite; returns the number of failures and errors. */
  private static int writeJunit(List<Path> suites, Path output) throws Exception {
    Document merged = parser().newDocument();
    Element root = merged.createElement("testsuites");
    merged.appendChild(root);
    long tests = 0;
    long failures = 0;
    long errors = 0;
    long skipped = 0;
    double time = 0;
    for (Path file : suites) {
      Element suite = (Element) merged.importNode(parse(file).getDocumentElement(), true);
      // The JVM's system properties: long, and of no use to a CI report.
      for (Element properties : children(suite, "properties")) {
        suite.removeChild(properties);
      }
      removeIndentation(suite);
      root.appendChild(suite);
      tests += count(suite, "tests");
      failures += count(suite, "failures");
      errors += count(suite, "errors");
      skipped += count(suite, "skipped");
      time += Double.parseDouble(suite.getAttribute("time").replace(",", ""));
    }
    root.setAttribute("tests", Long.toString(tests));
    root.setAttribute("failures", Long.toString(failures));
    root.setAttribute("errors", Long.toString(errors));
    root.setAttribute("skipped", Long.toString(skipped));
    root.setAttribute("time", String.format(Locale.ROOT, "%.3f", time));
    write(merged, output);
    System.out.printf(
        "%s: %d tests, %d failures, %d errors, %d skipped%n",
        output, tests, failures, errors, skipped);
    return Math.toIntExact(failures + errors);
  }

  /**
   * Cobertura's {@code coverage > packages > package > classes > class > lines > line}, one class
   * per source file (JaCoCo counts lines by file). JaCoCo has no hit counts: a covered line has 1.
   */
  /** Writes coverage.xml; returns the line rate (0 to 1). */
  private static double writeCobertura(Path jacocoXml, Path output) throws Exception {
    Element report = parse(jacocoXml).getDocumentElement();
    Document cobertura = parser().newDocument();
    Element coverage = cobertura.createElement("coverage");
    cobertura.appendChild(coverage);
    Element sources = append(coverage, "sources");
    append(sources, "source").setTextContent(SOURCES.toString());
    Element packages = append(coverage, "packages");
    Counts total = new Counts();
    for (Element jacocoPackage : children(report, "package")) {
      String directory = jacocoPackage.getAttribute("name");
      Element pkg = append(packages, "package");
      pkg.setAttribute("name", directory.replace('/', '.'));
      Element classes = append(pkg, "classes");
      Counts packageCounts = new Counts();
      for (Element sourceFile : children(jacocoPackage, "sourcefile")) {
        String fileName = sourceFile.getAttribute("name");
        String path = directory.isEmpty() ? fileName : directory + "/" + fileName;
        Element cls = append(classes, "class");
        cls.setAttribute("name", path.replaceFirst("\\.java$", "").replace('/', '.'));
        cls.setAttribute("filename", path);
        append(cls, "methods");
        Element lines = append(cls, "lines");
        Counts fileCounts = new Counts();
        for (Element line : children(sourceFile, "line")) {
          lines.appendChild(coberturaLine(cobertura, line, fileCounts));
        }
        fileCounts.setRates(cls);
        packageCounts.add(fileCounts);
      }
      packageCounts.setRates(pkg);
      total.add(packageCounts);
    }
    total.setRates(coverage);
    coverage.setAttribute("lines-covered", Long.toString(total.linesCovered));
    coverage.setAttribute("lines-valid", Long.toString(total.lines));
    coverage.setAttribute("branches-covered", Long.toString(total.branchesCovered));
    coverage.setAttribute("branches-valid", Long.toString(total.branches));
    coverage.setAttribute("version", "jacoco");
    coverage.setAttribute("timestamp", Long.toString(System.currentTimeMillis()));
    write(cobertura, output);
    System.out.printf(
        Locale.ROOT,
        "%s: %d of %d lines covered (%.2f%%)%n",
        output,
        total.linesCovered,
        total.lines,
        100 * Counts.rate(total.linesCovered, total.lines));
    return Counts.rate(total.linesCovered, total.lines);
  }

  private static Element coberturaLine(Document document, Element jacocoLine, Counts counts) {
    boolean covered = count(jacocoLine, "ci") > 0;
    long branchesCovered = count(jacocoLine, "cb");
    long branches = branchesCovered + count(jacocoLine, "mb");
    counts.lines++;
    counts.linesCovered += covered ? 1 : 0;
    counts.branches += branches;
    counts.branchesCovered += branchesCovered;
    Element line = document.createElement("line");
    line.setAttribute("number", jacocoLine.getAttribute("nr"));
    line.setAttribute("hits", covered ? "1" : "0");
    line.setAttribute("branch", Boolean.toString(branches > 0));
    if (branches > 0) {
      long percent = 100 * branchesCovered / branches;
      line.setAttribute(
          "condition-coverage", percent + "% (" + branchesCovered + "/" + branches + ")");
    }
    return line;
  }

  /** Line and branch counts of a file, a package or the whole report. */
  private static final class Counts {
    long lines;
    long linesCovered;
    long branches;
    long branchesCovered;

    void add(Counts other) {
      lines += other.lines;
      linesCovered += other.linesCovered;
      branches += other.branches;
      branchesCovered += other.branchesCovered;
    }

    void setRates(Element element) {
      element.setAttribute("line-rate", format(rate(linesCovered, lines)));
      element.setAttribute("branch-rate", format(rate(branchesCovered, branches)));
      element.setAttribute("complexity", "0");
    }

    static double rate(long covered, long valid) {
      return valid == 0 ? 1.0 : (double) covered / valid;
    }

    static String format(double rate) {
      return String.format(Locale.ROOT, "%.4f", rate);
    }
  }

  private static long count(Element element, String attribute) {
    String value = element.getAttribute(attribute);
    return value.isEmpty() ? 0 : Long.parseLong(value);
  }

  private static List<Element> children(Element parent, String name) {
    List<Element> elements = new ArrayList<>();
    NodeList nodes = parent.getChildNodes();
    for (int i = 0; i < nodes.getLength(); i++) {
      if (nodes.item(i) instanceof Element element && element.getTagName().equals(name)) {
        elements.add(element);
      }
    }
    return elements;
  }

  /** Drops the whitespace between elements, so that the output is indented anew. */
  private static void removeIndentation(Node node) {
    NodeList nodes = node.getChildNodes();
    for (int i = nodes.getLength() - 1; i >= 0; i--) {
      Node child = nodes.item(i);
      if (child.getNodeType() == Node.TEXT_NODE && child.getTextContent().isBlank()) {
        node.removeChild(child);
      } else {
        removeIndentation(child);
      }
    }
  }

  private static Element append(Node parent, String name) {
    Document document = parent.getOwnerDocument();
    return (Element) parent.appendChild(document.createElement(name));
  }

  private static DocumentBuilder parser() throws Exception {
    DocumentBuilderFactory factory = DocumentBuilderFactory.newInstance();
    factory.setFeature(XMLConstants.FEATURE_SECURE_PROCESSING, true);
    // jacoco.xml names a DTD that is not there: read the file without it.
    factory.setFeature("http://apache.org/xml/features/nonvalidating/load-external-dtd", false);
    return factory.newDocumentBuilder();
  }

  private static Document parse(Path file) throws Exception {
    return parser().parse(file.toFile());
  }

  private static void write(Document document, Path output) throws Exception {
    Transformer transformer = TransformerFactory.newInstance().newTransformer();
    transformer.setOutputProperty(OutputKeys.INDENT, "yes");
    transformer.setOutputProperty("{http://xml.apache.org/xslt}indent-amount", "2");
    document.setXmlStandalone(true);
    transformer.transform(new DOMSource(document), new StreamResult(output.toFile()));
  }
}
